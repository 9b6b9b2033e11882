"""The Numenta Anomaly Benchmark's scoring rules, applied to flags read back from the service.

A series is a list of row timestamps, its labelled windows are [start, end] timestamp pairs and a
detector's output is the set of flagged row timestamps. Rows, not seconds, measure every distance,
as in NAB's own sweeper: the position of a flag inside a window is `-(right - row + 1) / width`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750
FAR_PAST_WINDOW = 3.0  # beyond this many window widths a false positive costs in full


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    true_positive: float
    miss: float
    false_positive: float


PROFILES = (
    Profile("standard", 1.0, 1.0, 0.11),
    Profile("reward_low_fp", 1.0, 1.0, 0.22),
    Profile("reward_low_fn", 1.0, 2.0, 0.11),
)


@dataclass(frozen=True, slots=True)
class SeriesScore:
    raw: float
    windows: int
    detected: int
    false_positives: int


def probation_rows(rows: int) -> int:
    """Rows at the start of a series whose flags NAB ignores."""
    return min(math.floor(PROBATION_FRACTION * rows), PROBATION_MAX_ROWS)


def scaled_sigmoid(position: float) -> float:
    """1 well before a window's right edge, 0 at it, towards -1 after; -1 past 3 widths."""
    if position > FAR_PAST_WINDOW:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def window_rows(stamps: Sequence[float], windows: Iterable[tuple[float, float]]) -> list[range]:
    """Each labelled window as the range of rows whose timestamps fall inside it."""
    found = []
    for start, end in windows:
        left, right = bisect_left(stamps, start), bisect_right(stamps, end)
        if right > left:
            found.append(range(left, right))
    return found


def score_series(
    stamps: Sequence[float],
    windows: Iterable[tuple[float, float]],
    flags: Iterable[float],
    profile: Profile,
) -> SeriesScore:
    """The raw NAB score of one series: early hits earn, misses and false alarms cost."""
    spans = window_rows(stamps, windows)
    probation = probation_rows(len(stamps))
    rows = sorted({bisect_left(stamps, ts) for ts in flags})
    rows = [row for row in rows if probation <= row < len(stamps)]

    hit: dict[int, float] = {}
    raw = 0.0
    false_positives = 0
    for row in rows:
        index = _window_at(spans, row)
        if index is not None:
            # Only the earliest flag in a window counts; later ones neither earn nor cost.
            hit.setdefault(index, _true_positive(spans[index], row, profile))
            continue
        raw += _false_positive(spans, row, profile)
        false_positives += 1

    raw += sum(hit.values()) - profile.miss * (len(spans) - len(hit))
    return SeriesScore(raw, len(spans), len(hit), false_positives)


def normalised(raw: float, windows: int, profile: Profile) -> float:
    """100 for a perfect detector, 0 for one that never flags."""
    null = -profile.miss * windows
    perfect = profile.true_positive * windows
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def _window_at(spans: list[range], row: int) -> int | None:
    for index, span in enumerate(spans):
        if row in span:
            return index
    return None


def _true_positive(span: range, row: int, profile: Profile) -> float:
    width = len(span)
    position = -(span[-1] - row + 1) / width
    return profile.true_positive * scaled_sigmoid(position) / scaled_sigmoid(-1.0)


def _false_positive(spans: list[range], row: int, profile: Profile) -> float:
    before = [span for span in spans if span[-1] < row]
    if not before:
        return -profile.false_positive
    last = before[-1]
    position = (row - last[-1]) / max(len(last) - 1, 1)
    return profile.false_positive * scaled_sigmoid(position)
