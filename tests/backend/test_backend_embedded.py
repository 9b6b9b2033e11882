"""`create_asgi_app` inside an asyncio program, reached through httpx.ASGITransport.

Runs in a child interpreter: Django settings are once per process, and the pytest process
may configure the embedded backend for other tests with other arguments.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import asyncio, json, sys
import httpx
from backend.embedded import create_asgi_app

DATABASE_URL, TOKEN = sys.argv[1], sys.argv[2]


async def main():
    # Called from inside a running event loop, as a middleware lifespan hook would.
    app = create_asgi_app(DATABASE_URL, TOKEN)
    report = {"same_app": create_asgi_app(DATABASE_URL, TOKEN) is app}
    try:
        create_asgi_app(DATABASE_URL, "another-token")
    except RuntimeError as error:
        report["reconfigure_error"] = str(error)

    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Token {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://backend", headers=headers
    ) as client:
        created = await client.post(
            "/api/notification/channels/", json={"name": "embedded", "channel_type": "email"}
        )
        read = await client.get(f"/api/notification/channels/{created.json()['id']}/")
        burst = await asyncio.gather(*(
            client.post("/api/core/configurations/", json={"key": f"k{i}", "value": i})
            for i in range(20)
        ))
        listed = await client.get("/api/core/configurations/", params={"ordering": "key"})
        anonymous = await client.get("/api/", headers={"Authorization": ""})

    report.update(
        created=[created.status_code, created.headers["etag"], created.json()["name"]],
        read=[read.status_code, read.json() == created.json()],
        burst=sorted({response.status_code for response in burst}),
        listed=[listed.json()["count"], len({row["id"] for row in listed.json()["results"]})],
        anonymous=anonymous.status_code,
    )
    print(json.dumps(report))


asyncio.run(main())
"""


def test_embedded_app_creates_and_reads(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "embedded.sqlite3"

    finished = subprocess.run(
        [sys.executable, "-c", PROGRAM, f"sqlite:///{database}", "embedded-token"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout) == {
        "same_app": True,
        "reconfigure_error": (
            "The embedded backend is already configured with another database URL or "
            "token; Django allows one configuration per process."
        ),
        "created": [201, '"1"', "embedded"],
        "read": [200, True],
        "burst": [201],
        "listed": [20, 20],
        "anonymous": 401,
    }
    assert database.exists()
