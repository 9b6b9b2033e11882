"""Safe by default: a first start without any key makes an admin key, prints it once (stderr,
not the structured log) and stores only its hash; later starts print nothing."""

from __future__ import annotations

import hashlib
import re
import sqlite3

import httpx

from tests.middleware_server import MiddlewareServer

KEY = re.compile(r"oek_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def test_first_start_prints_an_admin_key_once_and_stores_its_hash(backend, tmp_path) -> None:
    env = {
        "OBSERVER_BACKEND_URL": backend.url,
        "OBSERVER_BACKEND_TOKEN": backend.token,
        "OBSERVER_ADMIN_API_KEY": "",  # none in the environment
    }
    with MiddlewareServer(tmp_path, env=env) as first:
        [key] = KEY.findall(first.log())
        me = httpx.get(f"{first.url}/auth/me", headers={"Authorization": f"Bearer {key}"})
        anonymous = httpx.get(f"{first.url}/auth/me")
    with MiddlewareServer(tmp_path, env=env) as second:
        again = httpx.get(f"{second.url}/auth/me", headers={"X-API-Key": key})
        log = second.log()  # both starts: the same file

    assert me.json()["data"] == {"name": "admin", "kind": "key", "scopes": ["admin"]}
    assert anonymous.status_code == 401
    assert again.status_code == 200
    assert KEY.findall(log) == [key]  # printed by the first start only
    line = next(line for line in log.splitlines() if key in line)
    assert not line.lstrip().startswith("{")  # a bare line, not a structured log record
    assert "Authorization: Bearer <key>" in log

    database = sqlite3.connect(tmp_path / "observer.db")
    try:
        rows = database.execute("SELECT name, key_hash, scopes FROM api_keys").fetchall()
    finally:
        database.close()
    assert rows == [("admin", hashlib.sha256(key.encode()).hexdigest(), "admin")]
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("observer.db*"))
    assert key.encode() not in stored
