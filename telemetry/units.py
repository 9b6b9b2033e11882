"""Canonical units: durations in milliseconds (`ms`), sizes in bytes (`By`, as in UCUM and OTel).

A unit not listed here is kept as sent; only units we know are converted, so a rule written for
`ms` also matches a series that an agent reports in `s` or `us`.
"""

from __future__ import annotations

DURATION = "ms"
SIZE = "By"

_DURATIONS = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "μs": 1e-3,
    "ms": 1.0,
    "s": 1e3,
    "sec": 1e3,
    "min": 6e4,
    "h": 3.6e6,
    "nanoseconds": 1e-6,
    "microseconds": 1e-3,
    "milliseconds": 1.0,
    "seconds": 1e3,
    "minutes": 6e4,
    "hours": 3.6e6,
}
_SIZES = {
    "B": 1.0,
    "By": 1.0,
    "byte": 1.0,
    "bytes": 1.0,
    "kB": 1e3,
    "KB": 1e3,
    "KiB": 1024.0,
    "KiBy": 1024.0,
    "MB": 1e6,
    "MiB": 1024.0**2,
    "MiBy": 1024.0**2,
    "GB": 1e9,
    "GiB": 1024.0**3,
    "GiBy": 1024.0**3,
    "TB": 1e12,
    "TiB": 1024.0**4,
    "TiBy": 1024.0**4,
}

# unit as sent -> (canonical unit, factor to multiply the value by)
CONVERSIONS: dict[str, tuple[str, float]] = {
    **{unit: (DURATION, factor) for unit, factor in _DURATIONS.items()},
    **{unit: (SIZE, factor) for unit, factor in _SIZES.items()},
}


def canonical(unit: str | None) -> tuple[str | None, float]:
    """The canonical unit and the factor into it; an unknown unit maps to itself."""
    if unit is None:
        return None, 1.0
    return CONVERSIONS.get(unit, (unit, 1.0))
