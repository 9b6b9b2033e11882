"""How robust the detector's defaults are: a sensitivity table and a leave-one-category-out check.

Runs the detector in-process on every NAB series (the same `SeriesDetector.observe` calls the
analyzer makes; `python -m bench.nab` checks the defaults through the API), so the 181
parameter sets below take about 80 s on two cores.

- Sensitivity: each main parameter moved by -20%, -10%, +10% and +20% alone.
- Leave one category out: for each category with windows, pick the best standard score on the
  other categories from a small grid, then score the left-out category with that choice.

    python -m bench.nab_sensitivity [--data ../shared/nab/data] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

from bench.nab import DEFAULT_DATA, Series, load
from bench.nab_scoring import PROFILES, normalised, score_series
from telemetry.detectors import DEFAULT_CONFIG, SeriesDetector

STEPS = (-0.2, -0.1, 0.1, 0.2)
MAIN_PARAMETERS = (
    "min_surprise",
    "record_decay",
    "hold_points",
    "record_start",
    "level_alpha",
    "short_alpha",
    "residual_clip",
    "scale_floor",
    "pattern_length",
    "pattern_bins",
    "familiar_weight",
)
GRID = {
    "min_surprise": (1.8, 1.9, 2.0, 2.1, 2.2),
    "record_decay": (0.4, 0.5, 0.6),
    "hold_points": (80, 100, 120),
    "pattern_bins": (8, 12, 16),
}

# Filled before the pool starts: forked workers inherit the series instead of pickling them.
_series: list[Series] = []


def flags_of(index: int, overrides: dict[str, float]) -> list[float]:
    """The timestamps one series' detector flags with the defaults changed by `overrides`."""
    series = _series[index]
    detector = SeriesDetector(dataclasses.replace(DEFAULT_CONFIG, **overrides))
    observe = detector.observe
    return [
        ts
        for ts, value in zip(series.stamps, series.values, strict=True)
        if observe(ts, value)[0] is not None
    ]


def raw_scores(pool: Executor, overrides: dict[str, float]) -> list[list[float]]:
    """Per series, the raw score of each profile; the windows count comes from `windows`."""
    jobs = range(len(_series))
    flags = pool.map(flags_of, jobs, itertools.repeat(overrides))
    return [
        [score_series(s.stamps, s.windows, found, p).raw for p in PROFILES]
        for s, found in zip(_series, flags, strict=True)
    ]


def summarise(raws: list[list[float]], members: list[int]) -> list[float]:
    """Each profile's normalised score over the chosen series."""
    windows = sum(len(_series[i].windows) for i in members)
    return [
        normalised(sum(raws[i][k] for i in members), windows, profile)
        for k, profile in enumerate(PROFILES)
    ]


def moved(name: str, step: float) -> dict[str, float]:
    value = getattr(DEFAULT_CONFIG, name)
    changed = value * (1.0 + step)
    return {name: round(changed) if isinstance(value, int) else round(changed, 6)}


def sensitivity(pool: Executor) -> list[str]:
    everyone = list(range(len(_series)))
    base = summarise(raw_scores(pool, {}), everyone)
    lines = [
        "standard / reward-low-FP when one parameter moves (defaults: "
        f"{base[0]:.1f} / {base[1]:.1f})",
        f"{'parameter':16}{'default':>9}" + "".join(f"{step:>+14.0%}" for step in STEPS),
    ]
    for name in MAIN_PARAMETERS:
        cells = []
        for step in STEPS:
            standard, low_fp, _ = summarise(raw_scores(pool, moved(name, step)), everyone)
            cells.append(f"{standard:8.1f} /{low_fp:5.1f}")
        lines.append(f"{name:16}{getattr(DEFAULT_CONFIG, name):>9}" + "".join(cells))
    return lines


def leave_one_category_out(pool: Executor) -> list[str]:
    choices = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    table = [raw_scores(pool, choice) for choice in choices]
    defaults = raw_scores(pool, {})
    categories = sorted({s.category for s in _series if s.windows})

    lines = ["category left out: parameters chosen on the others -> its score (defaults' score)"]
    held_out_raws = [list(row) for row in defaults]  # each category's rows replaced below
    for category in categories:
        inside = [i for i, s in enumerate(_series) if s.category == category]
        others = [i for i, s in enumerate(_series) if s.category != category]
        best = max(range(len(choices)), key=lambda c: summarise(table[c], others)[0])
        held_out = summarise(table[best], inside)
        for i in inside:
            held_out_raws[i] = table[best][i]
        lines.append(
            f"{category:24}{choices[best]} -> standard {held_out[0]:.1f}, low-FP "
            f"{held_out[1]:.1f} (defaults {summarise(defaults, inside)[0]:.1f})"
        )
    everyone = list(range(len(_series)))
    standard, low_fp, _ = summarise(held_out_raws, everyone)
    lines.append(f"{'all, each held out':24}standard {standard:.1f}, low-FP {low_fp:.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of NAB series")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    _series.extend(load(args.data, args.data.parent / "windows.json"))
    with ProcessPoolExecutor(args.workers) as pool:
        print("\n".join(sensitivity(pool)), flush=True)
        print()
        print("\n".join(leave_one_category_out(pool)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
