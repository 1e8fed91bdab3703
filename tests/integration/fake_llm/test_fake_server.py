"""The fake LLM server over real loopback HTTP: shapes, determinism, faults, caps, control."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.fake_llm.limits import openai_duration
from tests.support.fake_llm import FakeLLM, FakeLLMError

OPENAI_PATH = "/chat/completions"
ANTHROPIC_PATH = "/messages"


def chat(prompt: str, system: str | None = None, model: str = "fake-gpt", **extra: Any) -> Any:
    """An OpenAI chat completions request body."""
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages.append({"role": "user", "content": prompt})
    return {"model": model, "messages": messages, **extra}


def anthropic(prompt: str, system: str = "", max_tokens: int = 256, **extra: Any) -> Any:
    """An Anthropic messages request body."""
    messages = [{"role": "user", "content": prompt}]
    body = {"model": "fake-claude", "system": system, "max_tokens": max_tokens}
    return {**body, "messages": messages, **extra}


def content(response: httpx.Response) -> str:
    """The assistant text of a 200 OpenAI answer."""
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


@pytest.fixture
async def client(fake_llm: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the fake server's /v1 base URL."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=fake_llm.base_url, timeout=10.0, limits=limits) as c:
        yield c


async def wait_until_idle(fake_llm: FakeLLM, timeout_s: float = 3.0) -> dict[str, Any]:
    """Poll /_stats until nothing is in flight."""
    for _ in range(int(timeout_s / 0.02)):
        stats = fake_llm.stats()
        if not stats["in_flight"]:
            break
        await asyncio.sleep(0.02)
    return stats


# --- shapes and determinism -------------------------------------------------------------


async def test_openai_answer_has_exactly_the_openai_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(OPENAI_PATH, json=chat("Hello there", system="Be brief"))

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"id", "object", "created", "model", "choices", "usage"}
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "fake-gpt"
    text = content(response)
    assert re.fullmatch(r"reply\[[0-9a-f]{8}\]: Hello there", text)
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    ]
    prompt_tokens = math.ceil(len("Be brief" + "Hello there") / 4)
    completion_tokens = math.ceil(len(text) / 4)
    assert body["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


async def test_replies_are_a_pure_function_of_the_request(client: httpx.AsyncClient) -> None:
    base = chat("What is 2+2?", system="math")
    variants = [
        base,
        chat("What is 3+3?", system="math"),
        chat("What is 2+2?", system="maths"),
        chat("What is 2+2?", system="math", model="other-model"),
        chat("What is 2+2?", system="math", response_format={"type": "json_object"}),
    ]
    replies = [content(await client.post(OPENAI_PATH, json=v)) for v in variants]
    concurrent = await asyncio.gather(*(client.post(OPENAI_PATH, json=base) for _ in range(20)))

    assert {content(r) for r in concurrent} == {replies[0]}
    assert len(set(replies)) == len(variants)


async def test_anthropic_answer_shape_and_determinism(client: httpx.AsyncClient) -> None:
    first = await client.post(ANTHROPIC_PATH, json=anthropic("Hi Claude", system="terse"))
    again = await client.post(ANTHROPIC_PATH, json=anthropic("Hi Claude", system="terse"))
    other = await client.post(ANTHROPIC_PATH, json=anthropic("Bye Claude", system="terse"))

    body = first.json()
    assert first.status_code == 200
    keys = {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
    assert set(body) == keys
    assert body["id"].startswith("msg_")
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", "fake-claude")
    assert body["stop_reason"] == "end_turn"
    [block] = body["content"]
    assert block["type"] == "text"
    assert re.fullmatch(r"reply\[[0-9a-f]{8}\]: Hi Claude", block["text"])
    assert body["usage"] == {
        "input_tokens": math.ceil(len("terseHi Claude") / 4),
        "output_tokens": math.ceil(len(block["text"]) / 4),
    }
    assert again.json()["content"] == body["content"]
    assert other.json()["content"] != body["content"]


async def test_anthropic_errors_use_the_anthropic_shape(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(rules=[{"match": "busy", "status": 529}])

    invalid = await client.post(ANTHROPIC_PATH, json={"model": "m", "messages": []})
    overloaded = await client.post(ANTHROPIC_PATH, json=anthropic("busy now"))

    assert invalid.status_code == 400
    assert invalid.json()["type"] == "error"
    assert invalid.json()["error"]["type"] == "invalid_request_error"
    assert overloaded.status_code == 529
    assert overloaded.json()["error"]["type"] == "overloaded_error"


async def test_invalid_openai_requests_get_400(client: httpx.AsyncClient) -> None:
    not_json = await client.post(OPENAI_PATH, content=b"{not json")
    no_messages = await client.post(OPENAI_PATH, json={"model": "m"})

    assert not_json.status_code == no_messages.status_code == 400
    assert no_messages.json()["error"]["type"] == "invalid_request_error"
    assert "messages" in no_messages.json()["error"]["message"]


async def test_json_modes_return_parseable_json(client: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "mood": {"enum": ["happy", "sad"]},
        },
        "required": ["name", "age", "tags", "mood"],
    }
    json_schema = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}

    json_object = {"type": "json_object"}

    plain = await client.post(OPENAI_PATH, json=chat("Ann, 31", response_format=json_object))
    shaped = await client.post(OPENAI_PATH, json=chat("Ann, 31", response_format=json_schema))

    obj = json.loads(content(plain))
    assert set(obj) == {"reply", "hash", "length"}
    assert obj["length"] == len("Ann, 31")
    person = json.loads(content(shaped))
    assert set(person) == {"name", "age", "tags", "mood"}
    assert isinstance(person["name"], str)
    assert isinstance(person["age"], int)
    assert isinstance(person["tags"], list)
    assert all(isinstance(t, str) for t in person["tags"])
    assert person["mood"] in ("happy", "sad")


async def test_max_tokens_truncates_with_length_finish(client: httpx.AsyncClient) -> None:
    prompt = "a fairly long prompt " * 10
    full = content(await client.post(OPENAI_PATH, json=chat(prompt)))
    cut = await client.post(OPENAI_PATH, json=chat(prompt, max_tokens=5))
    claude = await client.post(ANTHROPIC_PATH, json=anthropic(prompt, max_tokens=3))

    body = cut.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == full[:20]
    assert body["usage"]["completion_tokens"] == 5
    assert claude.json()["stop_reason"] == "max_tokens"
    assert claude.json()["usage"]["output_tokens"] == 3
    assert len(claude.json()["content"][0]["text"]) == 12


async def test_stop_sequences_cut_the_reply(client: httpx.AsyncClient) -> None:
    openai = await client.post(OPENAI_PATH, json=chat("one two three", stop=["two"]))
    claude = await client.post(ANTHROPIC_PATH, json=anthropic("one two", stop_sequences=["two"]))

    assert content(openai).endswith(": one ")
    assert openai.json()["choices"][0]["finish_reason"] == "stop"
    assert claude.json()["stop_reason"] == "stop_sequence"
    assert claude.json()["stop_sequence"] == "two"


# --- scripted rules ---------------------------------------------------------------------


async def test_status_rule_applies_times_then_falls_through(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(rules=[{"match": "flaky", "status": 500, "times": 2}])

    unrelated = await client.post(OPENAI_PATH, json=chat("steady"))
    statuses = [(await client.post(OPENAI_PATH, json=chat("flaky"))).status_code for _ in "abc"]

    assert unrelated.status_code == 200
    assert statuses == [500, 500, 200]
    assert fake_llm.stats()["by_status"] == {"200": 2, "500": 2}


async def test_rules_match_system_text_and_first_match_wins(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(
        rules=[
            {"match": "extract", "reply": "first", "times": 1},
            {"match": "extract", "reply": "second"},
        ]
    )

    request = chat("doc", system="extract it")
    replies = [content(await client.post(OPENAI_PATH, json=request)) for _ in range(2)]

    assert replies == ["first", "second"]


async def test_429_rule_sends_retry_after(fake_llm: FakeLLM, client: httpx.AsyncClient) -> None:
    fake_llm.configure(rules=[{"match": "limited", "status": 429, "retry_after_s": 2.5}])

    response = await client.post(OPENAI_PATH, json=chat("limited"))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.headers["retry-after-ms"] == "2500"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


async def test_malformed_rule_alternates_invalid_json_and_missing_choices(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(rules=[{"match": "garbled", "malformed": True}])

    first = await client.post(OPENAI_PATH, json=chat("garbled"))
    second = await client.post(OPENAI_PATH, json=chat("garbled"))

    assert first.status_code == second.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(first.content)
    assert isinstance(second.json(), dict)
    assert "choices" not in second.json()


async def test_hang_rule_never_answers(fake_llm: FakeLLM, client: httpx.AsyncClient) -> None:
    fake_llm.configure(rules=[{"match": "stuck", "hang": True}])

    with pytest.raises(httpx.ReadTimeout):
        await client.post(OPENAI_PATH, json=chat("stuck"), timeout=0.3)
    healthy = await client.post(OPENAI_PATH, json=chat("fine"))

    assert healthy.status_code == 200
    assert (await wait_until_idle(fake_llm))["in_flight"] == 0
    assert [e["status"] for e in fake_llm.log()] == [499, 200]


async def test_delay_rule_delays_only_matching_requests(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(rules=[{"match": "slow", "delay_ms": 400}])

    async def timed(prompt: str) -> float:
        start = time.monotonic()
        assert (await client.post(OPENAI_PATH, json=chat(prompt))).status_code == 200
        return time.monotonic() - start

    slow, fast = await asyncio.gather(timed("slow one"), timed("quick one"))

    assert slow >= 0.4
    assert fast < 0.2


# --- global behaviour -------------------------------------------------------------------


async def test_rpm_cap_answers_429_with_rate_limit_headers(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(rpm=240, rate_window_s=0.5)  # 2 requests per 0.5 s window

    ok = [await client.post(OPENAI_PATH, json=chat(f"p{i}")) for i in range(2)]
    limited = await client.post(OPENAI_PATH, json=chat("p2"))
    await asyncio.sleep(int(limited.headers["retry-after-ms"]) / 1000 + 0.02)
    later = await client.post(OPENAI_PATH, json=chat("p3"))

    assert [r.status_code for r in ok] == [200, 200]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in ok] == ["1", "0"]
    assert ok[0].headers["x-ratelimit-limit-requests"] == "2"
    assert limited.status_code == 429
    assert limited.json() == {
        "error": {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    assert limited.headers["retry-after"] == "1"
    assert 0 < int(limited.headers["retry-after-ms"]) <= 500
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert re.fullmatch(r"\d+ms", limited.headers["x-ratelimit-reset-requests"])
    assert later.status_code == 200


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.25, "250ms"), (1.0, "1s"), (2.5, "2.5s"), (360.0, "6m0s"), (3723.5, "1h2m3.5s")],
)
def test_openai_duration_format(seconds: float, expected: str) -> None:
    assert openai_duration(seconds) == expected


async def test_peak_in_flight_counts_requests_held_by_latency(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(latency_ms=300)

    start = time.monotonic()
    responses = await asyncio.gather(
        *(client.post(OPENAI_PATH, json=chat(f"q{i}")) for i in range(50))
    )
    elapsed = time.monotonic() - start

    assert [r.status_code for r in responses] == [200] * 50
    assert elapsed < 0.9
    stats = await wait_until_idle(fake_llm)
    assert (stats["peak_in_flight"], stats["in_flight"], stats["requests"]) == (50, 0, 50)
    assert max(e["in_flight_at_arrival"] for e in fake_llm.log()) == 50


async def test_peak_in_flight_matches_a_client_side_cap(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(latency_ms=100)
    cap = asyncio.Semaphore(7)

    async def capped(i: int) -> int:
        async with cap:
            return (await client.post(OPENAI_PATH, json=chat(f"c{i}"))).status_code

    statuses = await asyncio.gather(*(capped(i) for i in range(28)))

    assert statuses == [200] * 28
    assert fake_llm.stats()["peak_in_flight"] == 7


async def test_window_counts_requests_tokens_and_peak_per_model(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    """Two bursts 0.3 s apart: a 0.25 s window holds one burst, a 1 s window both."""
    fake_llm.configure(latency_ms=100)
    burst = [chat(f"w{i}", model="a-rpm") for i in range(3)] + [chat("x", model="b-tpm")]
    first = await asyncio.gather(*(client.post(OPENAI_PATH, json=body) for body in burst))
    await asyncio.sleep(0.2)
    second = await asyncio.gather(*(client.post(OPENAI_PATH, json=b) for b in burst[:2]))
    usage = [r.json()["usage"]["total_tokens"] for r in first[:3] + second]

    narrow = fake_llm.window(0.25, model_suffix="-rpm")
    wide = fake_llm.window(1.0, model_suffix="-rpm")

    assert (narrow["requests"], narrow["max_requests_in_window"]) == (5, 3)
    assert (wide["max_requests_in_window"], wide["peak_in_flight"]) == (5, 3)
    assert wide["tokens"] == wide["max_tokens_in_window"] == sum(usage)
    assert narrow["max_tokens_in_window"] == sum(usage[:3])
    assert fake_llm.window(1.0)["peak_in_flight"] == 4
    with pytest.raises(FakeLLMError, match="400"):
        fake_llm.window(0.0)


async def test_max_in_flight_refuses_the_excess(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(latency_ms=300, max_in_flight=3)

    async def send(i: int) -> httpx.Response:
        await asyncio.sleep(0.02 * i)  # arrive in order, all within the latency
        if i == 4:
            return await client.post(ANTHROPIC_PATH, json=anthropic("x"))
        return await client.post(OPENAI_PATH, json=chat(f"m{i}"))

    responses = await asyncio.gather(*(send(i) for i in range(5)))

    assert [r.status_code for r in responses] == [200, 200, 200, 503, 529]
    assert fake_llm.stats()["peak_in_flight"] == 3


async def test_global_fault_rates_are_seeded(fake_llm: FakeLLM, client: httpx.AsyncClient) -> None:
    fake_llm.configure(error_rate=0.5, seed=7)

    async def statuses() -> list[int]:
        return [(await client.post(OPENAI_PATH, json=chat("x"))).status_code for _ in range(20)]

    first = await statuses()
    fake_llm.reset()
    second = await statuses()

    assert first == second
    assert set(first) == {200, 500}


async def test_latency_and_jitter_delay_every_answer(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(latency_ms=100, jitter_ms=100)

    await asyncio.gather(*(client.post(OPENAI_PATH, json=chat(f"j{i}")) for i in range(8)))

    held = [e["t_done"] - e["t_arrival"] for e in fake_llm.log()]
    assert all(0.1 <= h < 0.21 for h in held), held
    assert max(held) - min(held) > 0.02, held


# --- control API ------------------------------------------------------------------------


async def test_log_lists_prompts_in_arrival_order(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    prompts = [f"prompt number {i}" for i in range(5)]
    for prompt in prompts:
        await client.post(OPENAI_PATH, json=chat(prompt, system="sys", max_tokens=9))
    await client.post(ANTHROPIC_PATH, json=anthropic("last one"))

    log = fake_llm.log()

    assert [e["prompt"] for e in log] == [*prompts, "last one"]
    assert [e["path"] for e in log] == ["/v1/chat/completions"] * 5 + ["/v1/messages"]
    first = log[0]
    assert (first["model"], first["system"], first["max_tokens"]) == ("fake-gpt", "sys", 9)
    assert all(e["status"] == 200 and e["in_flight_at_arrival"] == 1 for e in log)
    assert all(e["t_arrival"] <= e["t_done"] for e in log)
    arrivals = [e["t_arrival"] for e in log]
    assert arrivals == sorted(arrivals)


async def test_reset_clears_stats_log_and_rule_budgets(
    fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake_llm.configure(rules=[{"match": "once", "status": 503, "times": 1}])
    for _ in range(2):
        await client.post(OPENAI_PATH, json=chat("once"))
    assert fake_llm.stats()["requests"] == 2

    fake_llm.reset()
    stats, log = fake_llm.stats(), fake_llm.log()
    again = await client.post(OPENAI_PATH, json=chat("once"))

    assert (stats["requests"], stats["by_status"], stats["peak_in_flight"], log) == (0, {}, 0, [])
    assert again.status_code == 503


def test_configure_replaces_behaviour_and_rejects_invalid(fake_llm: FakeLLM) -> None:
    fake_llm.configure(latency_ms=10, rules=[{"match": "x", "reply": "y"}])
    replaced = fake_llm.configure(seed=3)

    with pytest.raises(FakeLLMError, match="error_rate"):
        fake_llm.configure(error_rate=2)
    with pytest.raises(FakeLLMError, match="bogus"):
        fake_llm.configure(bogus=1)

    assert (replaced["latency_ms"], replaced["rules"], replaced["seed"]) == (0.0, [], 3)


def test_stats_and_health_endpoints(fake_llm: FakeLLM) -> None:
    stats = fake_llm.stats()
    health = httpx.get(f"{fake_llm.root_url}/healthz")

    assert fake_llm.base_url == f"{fake_llm.root_url}/v1"
    assert set(stats) == {"requests", "by_status", "in_flight", "peak_in_flight", "started"}
    assert health.json() == {"status": "ok"}


# --- the subprocess handle --------------------------------------------------------------


def test_start_failure_reports_stderr() -> None:
    server = FakeLLM(error_rate=5)

    with pytest.raises(FakeLLMError, match="error_rate"):
        server.start()

    assert not server.running


async def test_stop_is_prompt_even_with_a_hanging_request() -> None:
    with FakeLLM(latency_ms=5) as server:
        server.configure(rules=[{"match": "", "hang": True}])
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as c:
            pending = asyncio.ensure_future(c.post(OPENAI_PATH, json=chat("hi")))
            await asyncio.sleep(0.2)
            start = time.monotonic()
            await asyncio.to_thread(server.stop)
            stopped_in = time.monotonic() - start
            with pytest.raises(httpx.RemoteProtocolError):
                await pending

    assert server.returncode == 0
    assert stopped_in < 3.0
