"""The service order of an endpoint's waiting calls, on simulated time: each pop is a slot
that freed and went to the queue's head, as the gate does."""

from __future__ import annotations

from collections import Counter, deque

from app.engine.resources.fairness import FairQueue, Flow

SLOTS = 8  # calls in flight at once on the simulated endpoint


def queue(aging_s: float = 10.0) -> FairQueue[str]:
    return FairQueue(aging_s=aging_s, alive=lambda item: not item.startswith("dead"))


def serve(q: FairQueue[str], ticks: int) -> list[str]:
    return [q.pop() for _ in range(ticks) if q.head() is not None]


def test_a_small_job_behind_a_huge_one_gets_half_the_slots_at_once() -> None:
    q = queue()
    for i in range(100_000):
        q.push(f"big-{i}", 0, Flow("t", "big"), now=0.0)
    for i in range(20):
        q.push(f"small-{i}", 0, Flow("t", "small"), now=1.0)

    order = serve(q, 40)

    assert sorted(order[1::2], key=lambda s: int(s.split("-")[1])) == [
        f"small-{i}" for i in range(20)
    ]


def test_a_newcomer_takes_freed_slots_until_it_holds_its_share() -> None:
    q = queue()
    flows = {"big": Flow("t", "big"), "small": Flow("t", "small")}
    for i in range(1_000):
        q.push(f"big-{i}", 0, flows["big"], now=0.0)
    in_flight: deque[str] = deque()
    for _ in range(SLOTS):  # the big job holds every slot
        in_flight.append(q.pop().split("-")[0])
        q.started(flows["big"])
    for i in range(20):
        q.push(f"small-{i}", 0, flows["small"], now=1.0)

    served = []
    for _ in range(SLOTS):  # the oldest call ends and its slot goes to the head
        q.finished(flows[in_flight.popleft()])
        served.append(q.pop().split("-")[0])
        q.started(flows[served[-1]])
        in_flight.append(served[-1])

    assert served[: SLOTS // 2] == ["small"] * (SLOTS // 2)  # until it holds half
    assert Counter(in_flight) == {"small": SLOTS // 2, "big": SLOTS // 2}  # and keeps it


def test_tenants_share_first_then_their_jobs() -> None:
    q = queue()
    for job in ("a1", "a2", "a3"):
        for i in range(100):
            q.push(f"{job}-{i}", 0, Flow("a", job), now=0.0)
    for i in range(100):
        q.push(f"b1-{i}", 0, Flow("b", "b1"), now=0.0)

    served = Counter(item.split("-")[0] for item in serve(q, 60))

    assert served["b1"] == 30  # tenant b's one job gets what tenant a's three share
    assert served["a1"] == served["a2"] == served["a3"] == 10


def test_tenant_weights_split_the_slots() -> None:
    q = queue()
    for i in range(100):
        q.push(f"heavy-{i}", 0, Flow("heavy", "j", weight=3.0), now=0.0)
        q.push(f"light-{i}", 0, Flow("light", "j"), now=0.0)

    served = Counter(item.split("-")[0] for item in serve(q, 40))

    assert (served["heavy"], served["light"]) == (30, 10)


def test_an_idle_flow_banks_no_credit() -> None:
    q = queue()
    for i in range(50):
        q.push(f"busy-{i}", 0, Flow("t", "busy"), now=0.0)
    serve(q, 30)  # busy ran alone for a while
    for i in range(20):
        q.push(f"late-{i}", 0, Flow("t", "late"), now=1.0)

    order = serve(q, 20)

    assert Counter(item.split("-")[0] for item in order) == {"busy": 10, "late": 10}


def test_priority_orders_work_while_waits_are_short() -> None:
    q = queue(aging_s=10.0)
    for i in range(10):
        q.push(f"low-{i}", 5, Flow("t", "low"), now=0.0)
    for i in range(10):
        q.push(f"high-{i}", 0, Flow("t", "high"), now=1.0)

    assert serve(q, 10) == [f"high-{i}" for i in range(10)]


def test_an_aged_low_priority_call_overtakes_newer_high_priority_work() -> None:
    """The bound: a call of priority p goes before every call of priority q enqueued more than
    (p - q) * aging_s after it, however much of that keeps coming."""
    aging_s = 1.0
    q = queue(aging_s)
    q.push("low", 3, Flow("t", "low"), now=0.0)
    before_low: list[float] = []
    for tick in range(1_000):  # high-priority work arrives twice as fast as it is served
        now = tick * 0.1
        for i in range(2):
            q.push(f"high-{now}-{i}", 0, Flow("t", "high"), now=now)
        served = q.pop()
        if served == "low":
            break
        before_low.append(float(served.split("-")[1]))
    else:
        raise AssertionError("the low-priority call starved")

    assert max(before_low) <= 3 * aging_s  # nothing enqueued after its aging went first
    assert len(before_low) == 2 * 31  # it waited only for the high calls older than that


def test_cancelled_waiters_are_skipped_and_compacted() -> None:
    q = queue()
    q.push("dead-0", 0, Flow("t", "a"), now=0.0)
    q.push("live-0", 0, Flow("t", "a"), now=0.0)
    q.push("dead-1", 0, Flow("t", "b"), now=0.0)
    q.compact()

    assert len(q) == 1
    assert q.pop() == "live-0"
    assert q.head() is None
