"""A database that cannot take work is a 503 on any route; any other database error is a 500.

The refused connection is tested for real in tests/e2e/test_faults.py. A PostgreSQL that is
starting up, shutting down or out of connections cannot be brought about on demand there, so
these errors are built here as SQLAlchemy hands them on: a DBAPIError around the driver's error,
which carries the server's SQLSTATE.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sql_errors

from service.problems import install_problem_handlers, is_database_outage


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def dbapi_error(sqlstate: str) -> sql_errors.DBAPIError:
    return sql_errors.DBAPIError("SELECT 1", None, DriverError(sqlstate))


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (dbapi_error("57P03"), True),  # the database system is starting up
        (dbapi_error("57P01"), True),  # terminating connection due to administrator command
        (dbapi_error("53300"), True),  # too many connections
        (dbapi_error("08006"), True),  # connection failure
        (dbapi_error("23505"), False),  # unique violation: ours to fix, not to retry
        (dbapi_error("42P01"), False),  # undefined table
        (sql_errors.OperationalError("SELECT 1", None, DriverError("HY000")), True),
        (ConnectionRefusedError(111, "refused"), True),
        (ValueError("not the database"), False),
    ],
)
def test_which_errors_are_outages(error: BaseException, outage: bool) -> None:
    assert is_database_outage(error) is outage


async def test_an_outage_is_503_and_another_database_error_500() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/starting")
    async def starting() -> None:
        raise dbapi_error("57P03")

    @app.get("/duplicate")
    async def duplicate() -> None:
        raise dbapi_error("23505")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        starting_answer = await client.get("/starting")
        duplicate_answer = await client.get("/duplicate")

    assert (
        starting_answer.status_code,
        starting_answer.headers["retry-after"],
        starting_answer.json()["detail"],
    ) == (503, "5", "The service's database cannot be reached; retry later.")
    assert (duplicate_answer.status_code, duplicate_answer.json()["detail"]) == (
        500,
        "The service failed to handle this request.",
    )
