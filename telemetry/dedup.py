"""Duplicate detection over a sliding window of arrival time, in bounded memory."""

from __future__ import annotations

from collections import deque


class DedupWindow:
    """Remembers point fingerprints for `window_seconds`, at most `max_entries` of them.

    When full, the oldest fingerprint is forgotten first: a very late re-send may then pass
    as new, which costs one double count; growing without bound would cost the process.
    """

    def __init__(self, window_seconds: float, max_entries: int) -> None:
        self._window = window_seconds
        self._max_entries = max_entries
        self._seen: set[int] = set()
        self._arrivals: deque[tuple[float, int]] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: int) -> bool:
        return key in self._seen

    def remember(self, keys: list[int], now: float) -> None:
        self.expire(now)
        for key in keys:
            if key in self._seen:
                continue
            self._seen.add(key)
            self._arrivals.append((now, key))

        while len(self._arrivals) > self._max_entries:
            _, key = self._arrivals.popleft()
            self._seen.discard(key)

    def expire(self, now: float) -> None:
        horizon = now - self._window
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] <= horizon:
            _, key = arrivals.popleft()
            self._seen.discard(key)
