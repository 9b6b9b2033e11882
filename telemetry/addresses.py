"""Client addresses: which network they come from and, with a MaxMind database, where.

Lookups are cached per address in a bounded LRU, since agents send many points from few hosts.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

import maxminddb
from cachetools import LRUCache

logger = logging.getLogger(__name__)

CACHED_ADDRESSES = 10_000
_NOWHERE: dict[str, Any] = {
    "client_network": None,
    "client_country": None,
    "client_city": None,
    "client_latitude": None,
    "client_longitude": None,
}


class AddressInfo:
    def __init__(self, geoip_database: Path | None = None) -> None:
        # Opened once at start-up: a missing or corrupt file fails the start, not every lookup.
        self._reader = maxminddb.open_database(str(geoip_database)) if geoip_database else None
        self._cache: LRUCache[str, dict[str, Any]] = LRUCache(CACHED_ADDRESSES)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def describe(self, address: str | None) -> dict[str, Any]:
        """The network class and, for public addresses, the location; None fields if unknown."""
        if address is None:
            return _NOWHERE
        found = self._cache.get(address)
        if found is None:
            found = self._cache[address] = self._look_up(address)
        return found

    def _look_up(self, address: str) -> dict[str, Any]:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return _NOWHERE

        network = classify(ip)
        info = {**_NOWHERE, "client_network": network}
        if network == "public" and self._reader is not None:
            info.update(_location(self._reader.get(ip)))
        return info


def classify(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """`loopback`, `private` (RFC 1918, unique-local, link-local, CGNAT...) or `public`."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_global:
        return "public"
    return "private"


def _location(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        return {}
    country = record.get("country") or {}
    city = (record.get("city") or {}).get("names") or {}
    location = record.get("location") or {}
    return {
        "client_country": country.get("iso_code"),
        "client_city": city.get("en"),
        "client_latitude": location.get("latitude"),
        "client_longitude": location.get("longitude"),
    }
