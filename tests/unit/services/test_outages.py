"""Which errors mean "the database is away", and the runner's retry around its database work."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from app.services.errors import is_outage
from app.services.runner.outages import retrying


class PostgresError(Exception):
    """What asyncpg raises: an error with its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def dbapi_error(sqlstate: str) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, PostgresError(sqlstate))


@pytest.mark.parametrize(
    ("sqlstate", "outage"),
    [
        ("57P01", True),  # admin_shutdown: the server is stopping (pg_ctl stop -m fast)
        ("57P03", True),  # cannot_connect_now: starting up or shutting down
        ("08006", True),  # connection_failure
        ("23505", False),  # unique_violation: the data, which no retry fixes
        ("22P02", False),  # invalid_text_representation
    ],
)
def test_server_shutdown_and_lost_connections_are_outages_data_errors_are_not(
    sqlstate: str, outage: bool
) -> None:
    assert is_outage(dbapi_error(sqlstate)) is outage


async def test_outage_errors_are_retried_until_the_work_succeeds() -> None:
    failures = [ConnectionRefusedError(111, "refused"), dbapi_error("57P01")]

    async def work() -> str:
        if failures:
            raise failures.pop(0)
        return "stored"

    assert await retrying(work, "test") == "stored"
    assert failures == []


async def test_other_errors_raise_at_once_and_attempts_bound_the_retries() -> None:
    calls: list[int] = []

    async def refused() -> None:
        calls.append(1)
        raise ConnectionRefusedError(111, "refused")

    async def wrong() -> None:
        calls.append(1)
        raise ValueError("not a database outage")

    with pytest.raises(ValueError, match="not a database outage"):
        await retrying(wrong, "test")
    assert len(calls) == 1
    with pytest.raises(ConnectionRefusedError):
        await retrying(refused, "test", attempts=3)
    assert len(calls) == 1 + 3
