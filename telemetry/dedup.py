"""Duplicate detection over a sliding window of arrival time, in bounded memory.

Fingerprints are kept in time slices. The open slice is a set that takes new fingerprints; a
sealed slice is a sorted int64 array, 8 bytes a fingerprint. Every sealed fingerprint is also in
one merged sorted array, looked up with a single binary search for a whole request: one search
over a million entries costs a third of one search per slice, whose arrays the processing between
requests pushes out of the CPU's caches. Whole slices expire, so memory is returned in large
pieces.
"""

from __future__ import annotations

from collections import deque

import numpy as np

SLICES = 8


class DedupWindow:
    """Remembers fingerprints for at least `window_seconds`, at most `max_entries` of them.

    A fingerprint is forgotten between one window and one window plus a slice after it arrived.
    When the bound is reached the oldest slice goes first: a very late re-send may then pass as
    new, which costs one double count; growing without bound would cost the process.
    """

    def __init__(self, window_seconds: float, max_entries: int, slices: int = SLICES) -> None:
        self._window = window_seconds
        self._max_entries = max_entries
        self._slice_seconds = window_seconds / slices
        self._slice_capacity = max(1, max_entries // slices)
        self._open: set[int] = set()
        self._open_started = 0.0
        self._open_newest = 0.0
        # (arrival of the newest fingerprint in the slice, its sorted fingerprints)
        self._sealed: deque[tuple[float, np.ndarray]] = deque()
        self._merged = np.empty(0, dtype=np.int64)  # every sealed slice's, sorted

    @property
    def _sealed_count(self) -> int:
        return len(self._merged)

    def __len__(self) -> int:
        return len(self._open) + self._sealed_count

    def __contains__(self, key: int) -> bool:
        return bool(self.seen([key])[0])

    def seen(self, keys: list[int]) -> np.ndarray:
        """A boolean mask: which of these fingerprints are remembered."""
        opened = self._open
        if opened.isdisjoint(keys):  # the usual case, settled in C
            mask = np.zeros(len(keys), dtype=bool)
        else:
            mask = np.fromiter(map(opened.__contains__, keys), dtype=bool, count=len(keys))
        merged = self._merged
        if not len(merged) or not keys:
            return mask

        wanted = np.asarray(keys, dtype=np.int64)
        at = np.searchsorted(merged, wanted)
        at[at == len(merged)] = 0
        mask |= merged[at] == wanted
        return mask

    def remember(self, keys: list[int], now: float) -> None:
        if self._window <= 0 or not keys:
            return
        self.expire(now)

        taken = 0
        while taken < len(keys):
            self._roll(now)
            if not self._open:
                self._open_started = now
            room = self._slice_capacity - len(self._open)
            self._open.update(keys[taken : taken + room])
            self._open_newest = now
            taken += room

        while len(self) > self._max_entries and self._sealed:
            self._forget_oldest()

    def expire(self, now: float) -> None:
        horizon = now - self._window
        while self._sealed and self._sealed[0][0] <= horizon:
            self._forget_oldest()
        if self._open and self._open_newest <= horizon:
            self._open.clear()

    def _forget_oldest(self) -> None:
        _, oldest = self._sealed.popleft()
        # Each fingerprint is remembered once (a seen one is not remembered again), so these
        # positions are the oldest slice's own entries.
        self._merged = np.delete(self._merged, np.searchsorted(self._merged, oldest))

    def _roll(self, now: float) -> None:
        """Seal the open slice once it is old or full enough."""
        if not self._open:
            return
        old = now - self._open_started >= self._slice_seconds
        if not old and len(self._open) < self._slice_capacity:
            return

        fingerprints = np.fromiter(self._open, dtype=np.int64, count=len(self._open))
        fingerprints.sort()
        self._sealed.append((self._open_newest, fingerprints))
        # Two sorted runs: the stable sort (timsort) merges them in linear time.
        merged = np.concatenate((self._merged, fingerprints))
        merged.sort(kind="stable")
        self._merged = merged
        self._open = set()
