"""`python -m auth` on the configured database, and a revoke there reaching a running instance."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.middleware_server import REPO_ROOT, MiddlewareServer


def run_cli(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {"OBSERVER_DATABASE_URL": database_url, "PATH": os.environ.get("PATH", "/usr/bin")}
    return subprocess.run(
        [sys.executable, "-m", "auth", *arguments],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_create_list_and_revoke(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"

    created = run_cli(url, "create", "--name", "ci-agent", "--scope", "telemetry:write",
                      "--scope", "telemetry:read")  # fmt: skip
    key = created.stdout.strip()
    listed = run_cli(url, "list")
    revoked = run_cli(url, "revoke", "ci-agent")
    after = run_cli(url, "list")
    unknown = run_cli(url, "revoke", "nobody")
    bad_scope = run_cli(url, "create", "--name", "x", "--scope", "root")

    assert created.returncode == 0
    assert key.startswith("oek_") and "\n" not in key
    assert "shown only this once" in created.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["name", "id", "scopes", "created_at", "revoked_at", "last_used_at"]
    name, key_id, scopes, _, revoked_at, last_used = row.split()
    assert (name, key_id, scopes, revoked_at, last_used) == (
        "ci-agent", key.split("_")[1], "telemetry:read,telemetry:write", "-", "-",
    )  # fmt: skip
    assert key not in listed.stdout
    assert revoked.returncode == 0
    assert revoked.stdout.startswith("Revoked 'ci-agent' (now)")
    assert after.stdout.splitlines()[1].split()[4] != "-"
    assert (unknown.returncode, unknown.stderr) == (1, "No key is named 'nobody'.\n")
    assert bad_scope.returncode == 2


def test_a_revoke_through_another_instance_arrives_within_the_recheck(backend, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    key = run_cli(url, "create", "--name", "dashboard", "--scope", "crud:read").stdout.strip()
    env = {
        **backend.env,
        "OBSERVER_DATABASE_URL": url,
        "OBSERVER_AUTH_KEY_RECHECK_SECONDS": "0.5",
    }
    with MiddlewareServer(tmp_path / "instance", env=env) as server:
        caller = httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30)
        before = caller.get("/crud/entities").status_code
        run_cli(url, "revoke", "dashboard")  # the other "instance": straight to the database
        deadline = time.monotonic() + 20
        while (answer := caller.get("/crud/entities")).status_code == 200:
            assert time.monotonic() < deadline, "the revoke never reached the instance"
            time.sleep(0.1)
        caller.close()
        trail = httpx.get(
            f"{server.url}/audit", params={"entity_type": "auth.keys"}, headers=server.headers
        ).json()["data"]

    assert before == 200
    assert (answer.status_code, answer.json()["detail"]) == (401, "The API key was revoked.")
    assert [(e["actor"], e["operation"]) for e in trail] == [
        ("command-line", "revoke"),
        ("command-line", "create"),
    ]
