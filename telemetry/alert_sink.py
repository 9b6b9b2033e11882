"""The alert sink: persists alert changes and API rules, and tells the backend about alerts.

The worker only queues changes (it must never wait on a database); this task saves them to the
`alerts` table and then brings the backend's `notification.alerts` up to date from that table,
so an alert that fired while the backend was down reaches it once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import httpx

from django_integration.connection import Database
from django_integration.exceptions import BackendError, BackendRejected
from service.problems import Problem
from telemetry import alert_store
from telemetry.alerts import RESOLVED, AlertBook
from telemetry.rules import Rule, RuleBook, RuleIn, from_api

logger = logging.getLogger(__name__)

ALERTS_PATH = "/api/notification/alerts/"
SYNC_BATCH = 50
MAX_BACKOFF = 60.0


class Backend(Protocol):
    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...


class AlertSink:
    def __init__(
        self,
        database: Database,
        book: AlertBook,
        rules: RuleBook,
        backend: Backend | None = None,
        interval: float = 1.0,
    ) -> None:
        self.database = database
        self._book = book
        self._rules = rules
        self._backend = backend
        self._interval = interval
        self._wake = asyncio.Event()
        self._saving = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._backoff = 0.0
        self._retry_at = 0.0
        self.backend_failing = False
        self.saving_failing = False
        book.on_change = self._wake.set

    async def start(self) -> None:
        if self._task is not None:
            return
        for rule_id, body in await alert_store.load_rules(self.database):
            self._rules.add(from_api(RuleIn.model_validate(body), self._hysteresis, rule_id))
        self._task = asyncio.create_task(self._run(), name="alert-sink")

    async def stop(self) -> None:
        """Save what is queued and stop; safe to call twice."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.flush()

    async def save_pending(self) -> None:
        """Write queued changes now, so a reader sees every alert the worker has raised."""
        # One writer at a time: an older change must never land after a newer one.
        async with self._saving:
            changes = self._book.take_changes()
            try:
                await alert_store.save_alerts(self.database, changes)
            except BaseException:
                self._book.put_back(changes)
                raise

    async def flush(self) -> None:
        """Save queued changes, then push what the backend has not heard, if it is time."""
        await self.save_pending()
        loop = asyncio.get_running_loop()
        if self._backend is not None and loop.time() >= self._retry_at:
            await self._sync_backend()

    async def add_rule(self, body: RuleIn) -> Rule:
        if self._rules.count >= self._rules.max_rules:
            raise Problem(
                409,
                f"At most {self._rules.max_rules} threshold rules can be in force.",
                title="Too Many Rules",
            )
        rule = from_api(body, self._hysteresis)
        await alert_store.save_rule(self.database, rule.id, body.model_dump())
        self._rules.add(rule)
        return rule

    async def delete_rule(self, rule_id: str) -> bool:
        if self._rules.get(rule_id) is None:
            return False
        await alert_store.delete_rule(self.database, rule_id)
        self._rules.remove(rule_id)
        self._book.resolve_rule(rule_id)
        return True

    @property
    def _hysteresis(self) -> float:
        return self._rules.default_hysteresis

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                # The database may be unavailable; changes wait in the book meanwhile. Logged
                # when failures start, with the cause, not on every round.
                if not self.saving_failing:
                    logger.exception("Saving alerts failed; retrying every round until it works.")
                self.saving_failing = True
            else:
                if self.saving_failing:
                    logger.info("Alerts are saved again.")
                self.saving_failing = False

    async def _sync_backend(self) -> None:
        for row in await alert_store.unsynced(self.database, SYNC_BATCH):
            try:
                await self._sync_one(row)
            except BackendRejected as exc:
                # A 4xx will not change on retry; record it as settled and say so.
                logger.warning("The backend refused alert %s: %s", row["id"], exc.detail)
                await alert_store.mark_synced(self.database, row["id"], "", row["state"])
            except BackendError as exc:
                self._back_off(exc)
                return
        if self.backend_failing:
            logger.info("Alerts reach the backend again.")
        self.backend_failing = False
        self._backoff = 0.0

    async def _sync_one(self, row: dict[str, Any]) -> None:
        backend = self._backend
        assert backend is not None
        backend_id = row["backend_id"]
        if backend_id is None:
            backend_id = await self._find(row)
        if backend_id is None:
            response = await backend.request("POST", ALERTS_PATH, json=_backend_alert(row))
            backend_id = str(response.json()["id"])
        elif backend_id and row["state"] == RESOLVED:
            patch = {
                "status": "resolved",
                "resolved_at": alert_store.iso_moment(row["resolved_at"]),
            }
            await backend.request("PATCH", f"{ALERTS_PATH}{backend_id}/", json=patch)
        await alert_store.mark_synced(self.database, row["id"], backend_id, row["state"])

    async def _find(self, row: dict[str, Any]) -> str | None:
        """The backend's copy of this alert, when an earlier POST got there but no answer did."""
        assert self._backend is not None
        params = {
            "fingerprint": row["fingerprint"],
            "fired_at": alert_store.iso_moment(row["fired_at"]),
        }
        response = await self._backend.request("GET", ALERTS_PATH, params=params)
        results = response.json().get("results") or []
        return str(results[0]["id"]) if results else None

    def _back_off(self, exc: BackendError) -> None:
        if not self.backend_failing:
            logger.warning("Cannot write alerts to the backend (%s); will retry.", exc.detail)
        self.backend_failing = True
        self._backoff = min(MAX_BACKOFF, max(1.0, self._backoff * 2))
        self._retry_at = asyncio.get_running_loop().time() + self._backoff


def _backend_alert(row: dict[str, Any]) -> dict[str, Any]:
    attributes = ", ".join(f"{key}={value}" for key, value in sorted(row["attributes"].items()))
    series = f"{row['service']}/{row['name']}" + (f" {{{attributes}}}" if attributes else "")
    body = {
        "title": f"{row['rule']}: {series}"[:255],
        "message": (
            f"{row['name']} {row['operator']} {row['threshold']:g} "
            f"(last value {row['value']:g}) on {series}."
        ),
        "severity": row["severity"],
        "status": row["state"],
        "fingerprint": row["fingerprint"],
        "fired_at": alert_store.iso_moment(row["fired_at"]),
        "resolved_at": alert_store.iso_moment(row["resolved_at"])
        if row["resolved_at"] is not None
        else None,
    }
    if row["backend_rule_id"]:
        body["rule"] = row["backend_rule_id"]
    return body
