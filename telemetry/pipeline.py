"""The pipeline: owns every stage and the worker task that drains the queue through them.

Points are acknowledged by the collector, then a single worker takes them in batches through
processor -> enricher -> correlator -> analyzer. As in the OpenTelemetry Collector's batch
processor, a batch closes when it is full or when its first point has waited long enough,
whichever comes first. Each batch runs without yielding to the event loop, so readers never see
a half-processed batch and the counters always add up.

Between batches, accepts in progress go first: an agent waits on its accept, while a batch in the
queue waits on nobody. Without that, an accept that needs a few turns of the event loop (reading
the body, admitting, answering) would wait for a whole batch at each turn when there is a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from service.settings import Settings
from telemetry.analyzer import Analyzer
from telemetry.backpressure import PointQueue
from telemetry.collector import Collector
from telemetry.correlator import Correlator
from telemetry.enricher import Enricher
from telemetry.point_batches import already_read, parse_points
from telemetry.points import BatchReader
from telemetry.processor import Processor
from telemetry.sources import BackendSources, CachedRecords

logger = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, settings: Settings, sources: BackendSources | None = None) -> None:
        self._settings = settings
        self.max_body_bytes = settings.telemetry_max_body_bytes
        self.queue = PointQueue(
            settings.telemetry_queue_max_items, settings.telemetry_queue_max_bytes
        )
        self.collector = Collector(settings, self.queue)
        self.collector.accepting = False

        # A service map file replaces the backend's applications as the source of service facts.
        facts_sources = None if settings.telemetry_service_map_file else sources
        self._applications = self._cached(facts_sources, "applications")
        self._rules = self._cached(sources, "alert rules")
        self.processor = Processor(
            settings.telemetry_max_series, settings.telemetry_max_attribute_values
        )
        self.enricher = Enricher.from_settings(settings, self._applications)
        self.correlator = Correlator.from_settings(settings)
        self.analyzer = Analyzer.from_settings(settings, self._rules)

        self._wake = asyncio.Event()
        # Each accept in progress, with the loop time it began at.
        self._accepts: dict[object, float] = {}
        self._accept_finished = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = False
        self.counters = dict.fromkeys(("processed", "batches", "failed_batches"), 0)

    @property
    def ready(self) -> bool:
        """Running and taking points: not from the moment shutdown begins, so that a readiness
        probe sends no more traffic here while the queue drains."""
        return self.collector.accepting and self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        if self._worker is not None:
            return
        self._worker = asyncio.create_task(self._run(), name="telemetry-worker")
        self.collector.accepting = True
        logger.info("Telemetry pipeline started.")

    def refuse_new(self) -> None:
        """Answer new telemetry with 503 from now on; the SIGTERM handler calls this."""
        if self.collector.accepting:
            self.collector.accepting = False
            logger.info("Telemetry pipeline refusing new points: shutting down.")

    async def stop(self, drain_timeout: float = 10.0) -> int:
        """Refuse new points, drain the queue within the deadline; return the points left."""
        if self._worker is None or self._stopped:
            return self.queue.queued
        self.refuse_new()
        self._stopping = True
        self._wake.set()

        try:
            await asyncio.wait_for(asyncio.shield(self._worker), drain_timeout)
        except TimeoutError:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._stopped = True

        left = self.queue.queued
        accepted, processed = self.collector.counters["accepted"], self.counters["processed"]
        if left:
            logger.warning(
                "Telemetry pipeline stopped with %d points unprocessed "
                "(accepted %d, processed %d).",
                left,
                accepted,
                processed,
            )
        else:
            logger.info(
                "Telemetry pipeline stopped with 0 points unprocessed (accepted %d, processed %d).",
                accepted,
                processed,
            )
        return left

    @contextlib.contextmanager
    def accepting(self) -> Iterator[None]:
        """Mark an accept in progress, from before its body is read until it is answered."""
        token = object()
        self._accepts[token] = asyncio.get_running_loop().time()
        try:
            yield
        finally:
            del self._accepts[token]
            self._accept_finished.set()

    async def submit(
        self,
        items: list[Any],
        client: str,
        rate_key: str | None = None,
        read: BatchReader = parse_points,
    ) -> dict[str, Any]:
        """Admit a batch of points (or raise a Problem) and wake the worker; `read` as in
        `Collector.admit`, the rate kept per `rate_key`, per `client` address without one."""
        await self.collector.check_rate(len(items), rate_key or client)
        result = self.collector.admit(items, client, read)
        self._wake.set()
        return result

    async def submit_one(
        self, item: Any, client: str, rate_key: str | None = None
    ) -> dict[str, Any]:
        # Checked before the rate, so that a bad point is a 422 that spends none of it.
        point = self.collector.check_one(item)
        await self.collector.check_rate(1, rate_key or client)
        result = self.collector.admit([point], client, read=already_read)
        self._wake.set()
        return result

    def metrics(self) -> dict[str, Any]:
        accepted = self.collector.counters["accepted"]
        processed = self.counters["processed"]
        queued = self.queue.queued
        return {
            **self.collector.counters,
            "processed": processed,
            "queued": queued,
            # Zero by construction; reported as a sum so a bug would show instead of hide.
            "dropped": accepted - processed - queued,
            "queue_capacity": self.queue.capacity,
            "queued_bytes": self.queue.queued_bytes,
            "queue_capacity_bytes": self.queue.capacity_bytes,
            "batches": self.counters["batches"],
            "failed_batches": self.counters["failed_batches"],
            "dedup_entries": self.collector.dedup_entries,
            "series": self.analyzer.series_count,
            "correlation_groups": len(self.correlator),
            "threshold_rules": self.analyzer.rules.count,
            "sources_failing": self.sources_failing(),
            **self.analyzer.counters,
            **self.processor.counters,
        }

    def sources_failing(self) -> bool:
        return any(cache is not None and cache.failing for cache in self._caches())

    def _cached(self, sources: BackendSources | None, what: str) -> CachedRecords | None:
        if sources is None:
            return None
        fetch = sources.applications if what == "applications" else sources.alert_rules
        return CachedRecords(
            what,
            fetch,
            ttl=self._settings.telemetry_service_facts_ttl_seconds,
            timeout=self._settings.backend_call_budget,
        )

    def _caches(self) -> tuple[CachedRecords | None, ...]:
        return (self._applications, self._rules)

    async def _run(self) -> None:
        batch_size = self._settings.telemetry_worker_batch_size
        while True:
            if not self.queue:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue

            await self._fill(batch_size)
            await self._let_accepts_finish()
            for cache in self._caches():
                if cache is not None:
                    await cache.refresh()
            self._process(*self.queue.take(batch_size))

    async def _let_accepts_finish(self) -> None:
        """Yield before a batch, and let accepts in progress finish first, for a bounded time."""
        # Two turns of the event loop: one reads what arrived during the last batch, the next
        # starts the handlers it created, which then count as accepts in progress.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        patience = self._settings.telemetry_accept_priority_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while (now := loop.time()) < deadline and self._recent_accepts(now, patience):
            self._accept_finished.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._accept_finished.wait(), deadline - now)

    def _recent_accepts(self, now: float, patience: float) -> bool:
        # Only accepts younger than the patience count: a client sending its body slowly would
        # otherwise hold back every batch until it is done.
        return any(now - began < patience for began in self._accepts.values())

    async def _fill(self, batch_size: int) -> None:
        """Wait for a full batch, at most the configured wait after its first point."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.telemetry_worker_max_wait_seconds
        while len(self.queue) < batch_size and not self._stopping:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    def _process(self, points: list[dict[str, Any]], size: int = 0) -> None:
        started = time.perf_counter()
        try:
            batch = self.processor.process(points)
            self.enricher.enrich(batch)
            self.correlator.correlate(batch.points)
            self.analyzer.analyze(batch)
        except Exception:
            # A bug in a stage must not stop the worker: these points went as far as they could.
            self.counters["failed_batches"] += 1
            logger.exception("A telemetry batch of %d points failed in a stage.", len(points))
        finally:
            self.counters["processed"] += len(points)
            self.counters["batches"] += 1
            self.queue.done(len(points), size)

        elapsed = time.perf_counter() - started
        if elapsed > 0:
            rate = len(points) / elapsed
            # The first measurement stands alone: averaged with the initial 0 it would read low.
            previous = self.collector.drain_rate
            self.collector.drain_rate = rate if previous <= 0 else 0.8 * previous + 0.2 * rate
