"""Every provider's request shape, as the fake LLM server captured it over real HTTP.

One full request (a multi-turn chat with a system message, images as a URL and as data, an
assistant tool call and its result, tools, ``tool_choice`` and the sampling fields) is sent
through each provider factory and model family; the captured path, query, headers and JSON
body must be what that API takes. Fields a provider does not accept are refused before
anything is sent, naming the field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.engine.errors import PermanentLLMError
from app.engine.llm import LLMClient, LLMRequest, LLMResponse
from app.engine.resources.config import EndpointConfig
from app.llm import anthropic_client, azure_client, openai_client, openai_compatible_client
from app.llm.anthropic_body import JSON_TOOL, JSON_TOOL_DESCRIPTION
from app.llm.capabilities import UnsupportedFieldError

PNG = "data:image/png;base64,iVBORw0KGgo="
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CHAT: tuple[dict[str, Any], ...] = (
    {"role": "developer", "content": "Answer in French."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image_url", "image_url": {"url": "https://img.example/a.jpg"}},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
)
FORCE_WEATHER = {"type": "function", "function": {"name": "weather"}}


def full(model: str, **fields: Any) -> LLMRequest:
    return LLMRequest(
        model=model,
        system="Be brief.",
        prompt="And now?",
        messages=CHAT,
        tools=(WEATHER,),
        **fields,
    )


Factory = Callable[[str, EndpointConfig], LLMClient]


@pytest.fixture
async def call(fake_llm: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., Any]]:
    """``await call(factory, request, **endpoint)``: (response, the captured log entry)."""
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, f"key-{name}")
    monkeypatch.setenv("TEAM_TOKEN", "t0ken")
    fake_llm.configure(capture=True)
    clients: list[LLMClient] = []

    async def run(
        factory: Factory, request: LLMRequest, **endpoint: Any
    ) -> tuple[LLMResponse, dict[str, Any]]:
        client = factory("writer", EndpointConfig(**endpoint))
        clients.append(client)
        response = await client.complete(request)
        [entry] = fake_llm.log()
        return response, entry

    yield run
    for client in clients:
        await client.aclose()


async def test_openai_chat_model(call: Any, fake_llm: Any) -> None:
    request = full(
        "gpt-4o",
        temperature=0.3,
        max_tokens=50,
        stop=("END",),
        seed=7,
        tool_choice=FORCE_WEATHER,
        top_p=0.9,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        logprobs=True,
        top_logprobs=2,
        n=2,
    )
    endpoint = {"provider": "openai", "model": "gpt-4o", "base_url": fake_llm.base_url}
    response, entry = await call(openai_client, request, **endpoint)
    assert entry["path"] == "/v1/chat/completions"
    assert entry["headers"]["authorization"] == "Bearer key-OPENAI_API_KEY"
    assert entry["body"] == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, *CHAT, USER_LAST],
        "temperature": 0.3,
        "top_p": 0.9,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "n": 2,
        "tool_choice": FORCE_WEATHER,
        "max_completion_tokens": 50,
        "stop": ["END"],
        "tools": [WEATHER],
    }
    [call_] = response.tool_calls
    assert call_["function"]["name"] == "weather"
    assert "city" in json.loads(call_["function"]["arguments"])
    assert (response.finish_reason, len(response.choices)) == ("tool_calls", 2)


USER_LAST = {"role": "user", "content": "And now?"}


async def test_openai_reasoning_model(call: Any, fake_llm: Any) -> None:
    request = LLMRequest("o3-mini", "Be brief.", "hi", temperature=0.0, max_tokens=9, stop=("X",))
    request.reasoning_effort = "low"
    endpoint = {"provider": "openai", "model": "o3-mini", "base_url": fake_llm.base_url}
    _, entry = await call(openai_client, request, **endpoint)
    assert entry["body"] == {
        "model": "o3-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "reasoning_effort": "low",
        "max_completion_tokens": 9,
    }


async def test_model_family_set_in_the_endpoint(call: Any, fake_llm: Any) -> None:
    endpoint = {
        "provider": "openai",
        "model": "my-finetune",
        "model_family": "reasoning",
        "base_url": fake_llm.base_url,
    }
    _, entry = await call(openai_client, LLMRequest("", "", "hi", temperature=1.0), **endpoint)
    assert "temperature" not in entry["body"]


async def test_azure(call: Any, fake_llm: Any) -> None:
    endpoint = {
        "provider": "azure",
        "model": "gpt-4o",
        "deployment": "prod-4o",
        "api_version": "2024-10-21",
        "base_url": fake_llm.root_url,
    }
    request = LLMRequest("", "", "hi", max_tokens=5, temperature=0.5)
    response, entry = await call(azure_client, request, **endpoint)
    assert entry["path"] == "/openai/deployments/prod-4o/chat/completions"
    assert entry["query"] == {"api-version": "2024-10-21"}
    assert entry["headers"]["api-key"] == "key-AZURE_OPENAI_API_KEY"
    assert "authorization" not in entry["headers"]
    assert entry["body"] == {
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5,
        "max_completion_tokens": 5,
    }
    assert response.model == "prod-4o"


async def test_azure_reasoning_deployment(call: Any, fake_llm: Any) -> None:
    endpoint = {"provider": "azure", "model": "o4-mini", "base_url": fake_llm.root_url}
    request = LLMRequest("", "", "hi", temperature=0.5, stop=("X",))
    _, entry = await call(azure_client, request, **endpoint)
    assert entry["path"] == "/openai/deployments/o4-mini/chat/completions"
    assert entry["query"] == {"api-version": "2024-10-21"}
    assert entry["body"] == {"messages": [{"role": "user", "content": "hi"}]}


async def test_openai_compatible_passes_everything(call: Any, fake_llm: Any) -> None:
    request = full("local", max_tokens=8, reasoning_effort="high", tool_choice="auto")
    endpoint = {"provider": "openai-compatible", "model": "local", "base_url": fake_llm.base_url}
    _, entry = await call(openai_compatible_client, request, **endpoint)
    assert "authorization" not in entry["headers"]
    body = entry["body"]
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, *CHAT, USER_LAST]
    assert (body["max_tokens"], body["reasoning_effort"]) == (8, "high")
    assert (body["tools"], body["tool_choice"]) == ([WEATHER], "auto")


async def test_anthropic_chat(call: Any, fake_llm: Any) -> None:
    request = full(
        "claude-x",
        temperature=0.3,
        top_p=0.9,
        stop=("END",),
        seed=7,  # not in the API: left out
        tool_choice=FORCE_WEATHER,
    )
    endpoint = {"provider": "anthropic", "model": "claude-x", "base_url": fake_llm.root_url}
    response, entry = await call(anthropic_client, request, **endpoint)
    assert entry["path"] == "/v1/messages"
    assert entry["headers"]["x-api-key"] == "key-ANTHROPIC_API_KEY"
    assert entry["headers"]["anthropic-version"] == "2023-06-01"
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    assert entry["body"] == {
        "model": "claude-x",
        "max_tokens": 1024,
        "system": "Be brief.\n\nAnswer in French.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://img.example/a.jpg"},
                    },
                    {"type": "image", "source": image},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}],
            },
            USER_LAST,
        ],
        "temperature": 0.3,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "weather",
                "description": "Weather in a city.",
                "input_schema": WEATHER["function"]["parameters"],
            }
        ],
        "tool_choice": {"type": "tool", "name": "weather"},
    }
    [call_] = response.tool_calls
    assert call_["function"]["name"] == "weather"
    assert "city" in json.loads(call_["function"]["arguments"])
    assert response.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("choice", "sent"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"})],
)
async def test_anthropic_tool_choice(call: Any, fake_llm: Any, choice: str, sent: Any) -> None:
    endpoint = {"provider": "anthropic", "model": "claude-x", "base_url": fake_llm.root_url}
    request = LLMRequest("", "", "hi", tools=(WEATHER,), tool_choice=choice)
    _, entry = await call(anthropic_client, request, **endpoint)
    assert entry["body"]["tool_choice"] == sent


async def test_anthropic_native_json(call: Any, fake_llm: Any) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    endpoint = {"provider": "anthropic", "model": "claude-x", "base_url": fake_llm.root_url}
    request = LLMRequest("", "Count.", "a b c", response_format={"name": "c", "schema": schema})
    response, entry = await call(anthropic_client, request, **endpoint)
    body = entry["body"]
    assert body["system"] == "Count."  # no instruction: the tool's schema is the contract
    assert body["tools"] == [
        {"name": JSON_TOOL, "description": JSON_TOOL_DESCRIPTION, "input_schema": schema}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    assert isinstance(json.loads(response.text)["n"], int)
    assert (response.finish_reason, response.tool_calls) == ("stop", ())


async def test_extra_headers_on_every_provider(call: Any, fake_llm: Any) -> None:
    headers = {"headers": {"X-Team": "ml"}, "headers_env": {"X-Token": "TEAM_TOKEN"}}
    cases: list[tuple[Factory, dict[str, Any]]] = [
        (openai_client, {"provider": "openai", "base_url": fake_llm.base_url}),
        (azure_client, {"provider": "azure", "base_url": fake_llm.root_url}),
        (
            openai_compatible_client,
            {"provider": "openai-compatible", "base_url": fake_llm.base_url},
        ),
        (anthropic_client, {"provider": "anthropic", "base_url": fake_llm.root_url}),
    ]
    for factory, endpoint in cases:
        fake_llm.reset()
        _, entry = await call(factory, LLMRequest("", "", "hi"), model="m", **endpoint, **headers)
        assert (entry["headers"]["x-team"], entry["headers"]["x-token"]) == ("ml", "t0ken")


REFUSALS: list[tuple[str, Factory, dict[str, Any], dict[str, Any], str]] = [
    ("anthropic", anthropic_client, {"provider": "anthropic"}, {"frequency_penalty": 0.1}, ""),
    ("anthropic", anthropic_client, {"provider": "anthropic"}, {"presence_penalty": 0.1}, ""),
    ("anthropic", anthropic_client, {"provider": "anthropic"}, {"logprobs": True}, ""),
    ("anthropic", anthropic_client, {"provider": "anthropic"}, {"top_logprobs": 3}, ""),
    ("anthropic", anthropic_client, {"provider": "anthropic"}, {"n": 2}, ""),
    ("anthropic", anthropic_client, {"provider": "anthropic"}, {"reasoning_effort": "low"}, ""),
    ("o-series", openai_client, {"provider": "openai", "model": "o3"}, {"top_p": 0.5}, "/v1"),
    ("o-series", openai_client, {"provider": "openai", "model": "o1"}, {"logprobs": True}, "/v1"),
    (
        "gpt-5",
        openai_client,
        {"provider": "openai", "model": "gpt-5"},
        {"presence_penalty": 1},
        "/v1",
    ),
    ("chat", openai_client, {"provider": "openai"}, {"reasoning_effort": "low"}, "/v1"),
    ("azure", azure_client, {"provider": "azure", "model": "o3"}, {"frequency_penalty": 1}, ""),
]


@pytest.mark.parametrize(
    ("family", "factory", "endpoint", "fields", "suffix"),
    REFUSALS,
    ids=[f"{r[0]}-{next(iter(r[3]))}" for r in REFUSALS],
)
async def test_refused_before_sending(
    fake_llm: Any,
    monkeypatch: pytest.MonkeyPatch,
    family: str,
    factory: Factory,
    endpoint: dict[str, Any],
    fields: dict[str, Any],
    suffix: str,
) -> None:
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, "k")
    config = EndpointConfig(**{"model": "gpt-4o", **endpoint}, base_url=fake_llm.root_url + suffix)
    client = factory("writer", config)
    [field] = fields
    try:
        with pytest.raises(UnsupportedFieldError, match=f"'{field}'") as caught:
            await client.complete(LLMRequest("", "", "hi", **fields))
    finally:
        await client.aclose()
    assert isinstance(caught.value, PermanentLLMError)  # never retried
    assert caught.value.field == field
    assert "'writer'" in str(caught.value)
    assert fake_llm.log() == []
