"""Refused attempts: each 401 and 403 goes on the audit trail, until its address fails too often.

Past `OBSERVER_AUTH_FAILURE_RATE_LIMIT` failures the address gets 429 with Retry-After instead,
and those are not audited: a flood of bad credentials costs one limiter check each, not an
audit row each, so it cannot be turned against the audit store.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from crud.audit import AuditEntry, AuditTrail
from service.problems import Problem
from service.request_context import current_request_id

from .exceptions import Forbidden, TooManyFailures, Unauthenticated

logger = logging.getLogger(__name__)

NAMESPACE = "auth-failures"


@dataclass(frozen=True, slots=True)
class Attempt:
    route: str  # "METHOD /template", or "unmatched"
    address: str
    user_agent: str | None


class Refusals:
    def __init__(self, audit: AuditTrail, rate_limit: str) -> None:
        self._audit = audit
        self._limit = limits.parse(rate_limit)
        # A moving window counts exactly the last period's failures: no edge where two
        # fixed windows meet lets twice the limit through.
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def refused(self, refusal: Unauthenticated | Forbidden, attempt: Attempt) -> Problem:
        """The answer to give: the refusal, audited; or 429 once the address is over its limit."""
        if not self._limiter.hit(self._limit, NAMESPACE, attempt.address):
            return self._too_many(attempt.address)
        await self._record(refusal, attempt)
        return refusal

    async def _record(self, refusal: Unauthenticated | Forbidden, attempt: Attempt) -> None:
        entry = AuditEntry(
            actor=refusal.actor,
            operation="authenticate" if refusal.status == 401 else "authorize",
            entity_type=attempt.route,  # the trail cuts it to its column
            entity_id=None,
            changes={},
            status_code=refusal.status,
            request_id=current_request_id(),
            client_address=attempt.address,
            user_agent=attempt.user_agent,
        )
        try:
            await self._audit.record(entry)
        except Exception:
            # The refusal stands either way; leave what is needed to replay the entry.
            logger.exception("refusal could not be audited; replay it from here: %s", entry.row())

    def _too_many(self, address: str) -> TooManyFailures:
        stats = self._limiter.get_window_stats(self._limit, NAMESPACE, address)
        return TooManyFailures(max(1, math.ceil(stats.reset_time - time.time())))
