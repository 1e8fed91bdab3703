"""The simulator's seeded noise: 429/500 schedules, latency, and sentences dropped at low
conservatism. Noise never changes what a reply says."""

from __future__ import annotations

import math

import pytest

from app.engine import LLMRequest, RateLimitedError, TransientLLMError
from app.engine.optimization.prompts import parse_improved_value
from app.llm.simulated import SimulatedClient, simulate
from app.llm.simulation import answer, noise
from app.llm.simulation.counting import generate
from app.llm.simulation.diagnoses import NUMBER_WORDS, OTHER_CATEGORY, say
from app.llm.simulation.text import sentences
from tests.support.simulation import optimizer_for

SEED = "You answer questions about things. End your reply with a final line 'Answer: N'."
QUESTIONS = [item.question for item in generate(1000, seed=11)]
FEEDBACK = [say(OTHER_CATEGORY, "a drum"), say(NUMBER_WORDS, "three cats")]


def requests(model: str) -> list[LLMRequest]:
    return [LLMRequest(model, SEED, question) for question in QUESTIONS]


async def first_answers(model: str) -> list[BaseException | str]:
    """Each request's first outcome from a fresh client: the error raised, or the text."""
    client = SimulatedClient(model)
    outcomes: list[BaseException | str] = []
    for request in requests(model):
        try:
            outcomes.append((await client.complete(request)).text)
        except (RateLimitedError, TransientLLMError) as exc:
            outcomes.append(exc)
    return outcomes


def share(outcomes: list[BaseException | str], kind: type[BaseException]) -> float:
    return sum(isinstance(o, kind) for o in outcomes) / len(outcomes)


@pytest.mark.parametrize(
    ("variant", "kind", "stated"),
    [("throttled", RateLimitedError, noise.THROTTLED_SHARE), ("errors", TransientLLMError,
     noise.ERROR_SHARE)],
)  # fmt: skip
async def test_a_schedule_fails_its_stated_share_of_first_attempts_the_same_way_each_time(
    variant: str, kind: type[BaseException], stated: float
) -> None:
    assert len(set(QUESTIONS)) == 1000
    first = await first_answers(f"sim-task:{variant}")
    assert abs(share(first, kind) - stated) <= 3 * math.sqrt(stated * (1 - stated) / 1000)
    again = await first_answers(f"sim-task:{variant}")
    assert list(map(signature, again)) == list(map(signature, first))


def signature(outcome: BaseException | str) -> str:
    return outcome if isinstance(outcome, str) else type(outcome).__name__


async def test_a_429_asks_to_retry_after_a_moment_and_a_500_carries_its_status() -> None:
    outcomes = await first_answers("sim-task:throttled:errors")
    limited = [o for o in outcomes if isinstance(o, RateLimitedError)]
    errors = [o for o in outcomes if isinstance(o, TransientLLMError)]
    assert limited
    assert errors
    assert {o.retry_after for o in limited} == {noise.RETRY_AFTER_S}
    assert {o.status_code for o in errors} == {500}
    stated = noise.THROTTLED_SHARE + noise.ERROR_SHARE
    assert abs(len(limited + errors) / len(outcomes) - stated) <= 0.03


async def test_the_reply_after_the_retries_is_the_reply_without_the_schedule() -> None:
    client = SimulatedClient("sim-task:throttled:errors")
    failed = 0
    for request in requests("sim-task:throttled:errors"):
        for _ in range(noise.MAX_FAILURES + 1):
            try:
                reply = await client.complete(request)
                break
            except (RateLimitedError, TransientLLMError):
                failed += 1
        assert reply.text == simulate(LLMRequest("sim-task", SEED, request.prompt), "sim-task").text
    assert failed > 80


def test_noise_variants_leave_the_flaky_draw_and_every_role_reply_unchanged() -> None:
    texts = [optimizer_for("p", SEED, FEEDBACK, 0.5) + f"\n<!-- {n} -->" for n in range(200)]
    for base in ("sim-optimizer:flaky", "sim-optimizer"):
        noisy = f"{base}:throttled:errors:slow"
        assert [answer(noisy, "", t) for t in texts] == [answer(base, "", t) for t in texts]


def test_slow_latency_is_seeded_per_request_and_bounded() -> None:
    delays = [noise.latency_s("sim-task:slow", SEED, q) for q in QUESTIONS[:200]]
    assert delays == [noise.latency_s("sim-task:slow", SEED, q) for q in QUESTIONS[:200]]
    assert all(0.0 <= d < noise.SLOW_MAX_S for d in delays)
    assert len(set(delays)) > 150
    assert noise.latency_s("sim-task", SEED, QUESTIONS[0]) == 0.0


def proposals(conservatism: float) -> list[tuple[str, str]]:
    values = [f"{SEED} Keep it friendly, variant {n}." for n in range(100)]
    found = []
    for value in values:
        reply = answer("sim-optimizer", "", optimizer_for("p", value, FEEDBACK, conservatism))
        found.append((value, parse_improved_value(reply or "") or ""))
    return found


def lost(value: str, new: str) -> list[str]:
    return [s for s in sentences(value) if s not in sentences(new)]


def test_at_conservatism_0_1_some_proposals_also_drop_one_sentence() -> None:
    pairs = proposals(0.1)
    dropping = [(v, new) for v, new in pairs if lost(v, new)]
    assert 0.25 <= len(dropping) / len(pairs) <= 0.55
    for value, new in dropping:
        assert len(lost(value, new)) == 1
        assert len(sentences(new)) == len(sentences(value))  # one dropped, one fix added


@pytest.mark.parametrize("conservatism", [0.5, 0.9, 1.0])
def test_at_conservatism_0_5_and_above_no_sentence_is_ever_dropped(conservatism: float) -> None:
    assert all(not lost(value, new) for value, new in proposals(conservatism))
