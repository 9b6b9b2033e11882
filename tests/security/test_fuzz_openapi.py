"""Property-based fuzzing of the service's own OpenAPI document with schemathesis (issue #7).

The middleware (`python main.py`) and a reference backend of its own run as real processes on
loopback; schemathesis reads `/openapi.json` from the running service and sends each operation
requests generated from it. With the admin key, nothing may answer 5xx and every answer must
conform to the document (status, content type, body schema, documented headers). Without a
key, every operation but the public probes must answer 401.

Bounded for CI: a few examples per operation, a fixed derandomised seed, no shrinking.
Nothing is excluded; the backend is this module's own, so what the fuzzer writes stays here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer

ADMIN_KEY = "oek_fuzz_" + secrets.token_urlsafe(24)
# Real entity types of the reference backend, and None: keep the generated (unknown) one.
TARGETS = ("notification.channels", "core.configurations", "appmetrics.applications", None)
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})
PUBLIC = frozenset({("GET", "/health/live"), ("GET", "/health/ready")})
CONFORMANCE_CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
BOUNDED = settings(
    max_examples=6,
    derandomize=True,  # the same examples on every run
    database=None,
    deadline=None,  # a slow answer on a busy CI machine is not a finding
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzzed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiddlewareServer]:
    env = {"OBSERVER_ADMIN_API_KEY": ADMIN_KEY, "OBSERVER_TELEMETRY_ALERTS_TO_BACKEND": "false"}
    with BackendServer() as backend:
        env |= backend.env
        data_dir: Path = tmp_path_factory.mktemp("fuzzed")
        with MiddlewareServer(data_dir, env=env) as server:
            yield server


@pytest.fixture(scope="module")
def service_schema(fuzzed_service: MiddlewareServer) -> schemathesis.BaseSchema:
    document = httpx.get(f"{fuzzed_service.url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=fuzzed_service.url)
    return schema


def test_with_the_admin_key_nothing_fails_and_everything_conforms(service_schema) -> None:
    def call(case: schemathesis.Case) -> None:
        drop_generated_credentials(case)
        aim_at_real_entity_types(case)
        case.call_and_validate(
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            checks=CONFORMANCE_CHECKS,
            timeout=30,
        )

    assert fuzz_each_operation(service_schema, call) == []


def test_without_a_key_every_route_but_the_probes_is_401(service_schema) -> None:
    def call(case: schemathesis.Case) -> None:
        drop_generated_credentials(case)
        response = case.call(timeout=30)
        expected = 200 if (case.method.upper(), case.path) in PUBLIC else 401
        assert response.status_code == expected, response.text
        if expected == 401:
            assert response.headers["content-type"] == ["application/problem+json"]
            assert response.json()["status"] == 401

    assert fuzz_each_operation(service_schema, call) == []


def drop_generated_credentials(case: schemathesis.Case) -> None:
    """schemathesis fills the document's security schemes with made-up keys; send none of them."""
    if case.headers:
        for name in [name for name in case.headers if name.lower() in CREDENTIAL_HEADERS]:
            del case.headers[name]


def aim_at_real_entity_types(case: schemathesis.Case) -> None:
    """Most generated entity types do not exist and stop at a 404; send most cases to real ones,
    so validation, the backend call and the audit trail are fuzzed too. Chosen from the
    generated value itself, so the run stays deterministic."""
    params = case.path_parameters or {}
    if "app" in params and "resource" in params:
        target = TARGETS[len(params["app"]) % len(TARGETS)]
        if target is not None:
            params["app"], params["resource"] = target.split(".")
    if isinstance(case.body, dict) and isinstance(case.body.get("entity_type"), str):
        target = TARGETS[len(case.body["entity_type"]) % len(TARGETS)]
        if target is not None:
            case.body["entity_type"] = target


def fuzz_each_operation(
    schema: schemathesis.BaseSchema, call: Callable[[schemathesis.Case], None]
) -> list[str]:
    """Run `call` on each operation's generated cases; one line per operation that failed."""
    # schemathesis's pytest integration (`from_fixture`) reads a pytest attribute that pytest 9
    # removed, so each operation's cases are drawn here through its strategy instead.
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()  # an operation schemathesis cannot read fails the test here

        @BOUNDED
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            call(case)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # the first failing example
            failures.append(f"{operation.label}: {exc}")
    return failures
