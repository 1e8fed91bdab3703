"""Every shared store (memory, Redis, Postgres) shares the learned rate between its clients,
and shows it in ``snapshot``, ``GET /v1/endpoints``' ``shared`` object and ``/metrics``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.engine.resources.shared import AliasLimits
from app.services.limiting.view import shared_view
from app.services.observability.limiter_metrics import shared_families
from tests.integration.limiting import test_shared_store as contract
from tests.integration.limiting.test_shared_store import StoreFactory

# The store contract's fixtures: every test here runs on memory, Redis and Postgres.
backend, make_store = contract.backend, contract.make_store

LIMITS = {"m": AliasLimits(rpm=600, tpm=100_000)}


async def grants(store: contract.SharedRateStore, count: int) -> float:
    """Take ``count`` grants (the burst of 10 and what the rate adds); the last one's time."""
    last = 0.0
    taken = 0
    while taken < count:
        admission = await store.acquire("m", tokens=1)
        if admission.granted:
            taken, last = taken + 1, admission.at_s
    return last


async def test_a_cut_by_one_process_holds_for_the_others(make_store: StoreFactory) -> None:
    one, other = make_store(LIMITS), make_store(LIMITS)
    granted_at = await grants(one, 20)
    await one.cut("m", granted_at)
    seen = await other.snapshot("m")
    assert seen.learned_rpm == pytest.approx(0.9 * 20, rel=0.1)  # 0.9 x the last minute's
    assert seen.requests.limit_per_minute == seen.learned_rpm
    # 18 rpm: about one grant every 3.4 s for 3 s (the first answer brings the learned state
    # to this client), where the configured 600 rpm would give about 30
    assert await granted_within(other, 3.0) <= 3


async def test_a_grant_of_several_requests_counts_as_that_many(make_store: StoreFactory) -> None:
    """A slice (app.engine.resources.slices) is one decision of several requests: the cut is
    judged by the requests granted, not by the decisions."""
    store = make_store(LIMITS)
    admission = await store.acquire("m", requests=4, tokens=1)
    assert admission.granted
    for _ in range(4):
        assert (await store.acquire("m", requests=1, tokens=1)).granted
    await store.cut("m", admission.at_s)
    assert (await store.snapshot("m")).learned_rpm == pytest.approx(0.9 * 8, rel=0.1)


async def granted_within(store: contract.SharedRateStore, seconds: float) -> int:
    """Grants one client takes by asking as fast as it is allowed, for ``seconds``."""
    loop = asyncio.get_running_loop()
    end, taken = loop.time() + seconds, 0
    while loop.time() < end:
        admission = await store.acquire("m", tokens=1)
        taken += admission.granted
        if not admission.granted:
            await asyncio.sleep(min(admission.retry_after_s, 0.05))
    return taken


async def test_a_429_of_a_call_granted_before_the_cut_does_not_cut_again(
    make_store: StoreFactory,
) -> None:
    one, other = make_store(LIMITS), make_store(LIMITS)
    before = await grants(one, 20)
    await one.cut("m", before)
    learned = (await one.snapshot("m")).learned_rpm
    await other.cut("m", before)
    assert learned is not None
    assert (await other.snapshot("m")).learned_rpm == pytest.approx(learned, rel=1e-3)


async def test_stated_limits_are_shared_and_pace_the_minute_already_begun(
    make_store: StoreFactory,
) -> None:
    one, other = make_store(LIMITS), make_store(LIMITS)
    await grants(one, 10)  # the burst at the configured 600 rpm, before any answer came
    await one.learn_limits("m", 60, 30_000)
    seen = await other.snapshot("m")
    assert (seen.learned_rpm, seen.learned_tpm) == (60, 30_000)
    # the 10 calls count at 60 rpm (about 1 s each): none more for about 10 s
    assert await granted_within(other, 3.0) <= 1


async def test_the_view_and_the_metrics_show_the_learned_rate(make_store: StoreFactory) -> None:
    store = make_store(LIMITS)
    assert shared_view(await store.snapshot("m"), datetime.now(UTC))["learned_rpm"] is None
    await store.learn_limits("m", 120, None)
    seen = await store.snapshot("m")
    assert shared_view(seen, datetime.now(UTC))["learned_rpm"] == 120
    samples = {
        (sample.labels["resource"], sample.value)
        for family in shared_families({"m": seen})
        if family.name == "inf_shared_ratelimit_learned"
        for sample in family.samples
    }
    assert samples == {("requests", 120.0)}
