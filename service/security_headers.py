"""Security headers on every answer (added by service/edge.py), from tuples built once.

`X-Content-Type-Options: nosniff` stops a browser from reading JSON as HTML or script,
`X-Frame-Options: DENY` keeps every page out of frames (clickjacking), `Referrer-Policy:
no-referrer` keeps URLs (and the ids in them) from leaking to other sites, and `Cache-Control:
no-store` keeps answers carrying data out of browser and proxy caches. The docs pages and the
OpenAPI document carry no data and may be cached, so they go without `no-store`; an answer that
sets its own Cache-Control keeps it. The CRUD latency path pays one set lookup and one list copy.
"""

from __future__ import annotations

from collections.abc import Iterable

ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
NO_STORE = (b"cache-control", b"no-store")


def with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], no_store: bool = True
) -> list[tuple[bytes, bytes]]:
    """`headers` plus the security headers; `no_store` unless the answer set Cache-Control."""
    combined = [*headers, *ALWAYS]
    if no_store and not any(name == b"cache-control" for name, _ in combined):
        combined.append(NO_STORE)
    return combined
