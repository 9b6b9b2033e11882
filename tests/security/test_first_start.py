"""Safe by default: a first start without any key makes an admin key, prints it once on stdout
(the structured log is on stderr) and stores only its hash; later starts print nothing."""

from __future__ import annotations

import hashlib
import re
import sqlite3

import httpx

from tests.middleware_server import MiddlewareServer

KEY = re.compile(r"oek_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def test_first_start_prints_an_admin_key_once_and_stores_its_hash(backend, tmp_path) -> None:
    env = {
        **backend.env,
        "OBSERVER_ADMIN_API_KEY": "",  # none in the environment
    }
    with MiddlewareServer(tmp_path, env=env, separate_stdout=True) as first:
        [key] = KEY.findall(first.stdout())
        me = httpx.get(f"{first.url}/auth/me", headers={"Authorization": f"Bearer {key}"})
        anonymous = httpx.get(f"{first.url}/auth/me")
    with MiddlewareServer(tmp_path, env=env, separate_stdout=True) as second:
        again = httpx.get(f"{second.url}/auth/me", headers={"X-API-Key": key})
        printed, log = second.stdout(), second.log()  # both starts: the same files

    assert me.json()["data"] == {"name": "admin", "kind": "key", "scopes": ["admin"]}
    assert anonymous.status_code == 401
    assert again.status_code == 200
    assert printed == (  # the first start's, once; the second printed nothing
        "\nNo API key was configured, so this admin key was created. It is shown only now;"
        " only its hash is stored:\n\n"
        f"    {key}\n\n"
        "Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`, and create narrower"
        " keys with `python -m auth create --name NAME --scope SCOPE` or POST /auth/keys.\n\n"
    )
    assert key not in log  # the log stream (stderr) never holds it
    assert "observer eye middleware ready" in log

    database = sqlite3.connect(tmp_path / "observer.db")
    try:
        rows = database.execute("SELECT name, key_hash, scopes FROM api_keys").fetchall()
    finally:
        database.close()
    assert rows == [("admin", hashlib.sha256(key.encode()).hexdigest(), "admin")]
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("observer.db*"))
    assert key.encode() not in stored
