"""``FailureThrottle``: how many wrong API keys an address, and everyone, may send a minute."""

from __future__ import annotations

from app.services.requests.auth import MAX_ADDRESSES, FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_held_back_after_its_budget_and_recovers() -> None:
    clock = Clock()
    throttle = FailureThrottle(per_address_per_minute=6, total_per_minute=1_000, clock=clock)
    for _ in range(6):
        assert throttle.retry_after_s("10.0.0.1") == 0
        throttle.failed("10.0.0.1")

    assert throttle.retry_after_s("10.0.0.1") == 10.0  # one failure back every 10 s
    assert throttle.retry_after_s("10.0.0.2") == 0
    clock.now += 10.0
    assert throttle.retry_after_s("10.0.0.1") == 0


def test_the_total_budget_holds_back_every_address() -> None:
    clock = Clock()
    throttle = FailureThrottle(per_address_per_minute=100, total_per_minute=3, clock=clock)
    for i in range(3):
        throttle.failed(f"10.0.0.{i}")

    assert throttle.retry_after_s("10.9.9.9") == 20.0


def test_failures_far_apart_never_hold_anyone_back() -> None:
    clock = Clock()
    throttle = FailureThrottle(per_address_per_minute=2, total_per_minute=2, clock=clock)
    for _ in range(50):
        throttle.failed("10.0.0.1")
        clock.now += 30.0
        assert throttle.retry_after_s("10.0.0.1") == 0


def test_the_addresses_kept_are_bounded() -> None:
    clock = Clock()
    throttle = FailureThrottle(per_address_per_minute=5, total_per_minute=1e9, clock=clock)
    for i in range(MAX_ADDRESSES + 100):
        throttle.failed(f"address-{i}")

    assert throttle.tracked_addresses <= MAX_ADDRESSES
