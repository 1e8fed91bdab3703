"""The fake server's ``rate_headers``: how much its ``rpm`` cap tells the client."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.fake_llm import test_fake_server as server_tests
from tests.integration.fake_llm.test_fake_server import OPENAI_PATH, chat
from tests.support.fake_llm import FakeLLM

client = server_tests.client


@pytest.mark.parametrize(
    ("told", "on_success", "on_429"),
    [
        ("full", {"x-ratelimit-limit-requests"}, {"retry-after", "x-ratelimit-limit-requests"}),
        ("retry_after", set(), {"retry-after", "retry-after-ms"}),
        ("none", set(), set()),
    ],
)
async def test_the_cap_says_as_much_as_rate_headers_tells(
    fake_llm: FakeLLM,
    client: httpx.AsyncClient,
    told: str,
    on_success: set[str],
    on_429: set[str],
) -> None:
    fake_llm.configure(rpm=1, rate_headers=told)  # one request a minute
    ok = await client.post(OPENAI_PATH, json=chat("first"))
    limited = await client.post(OPENAI_PATH, json=chat("second"))
    assert (ok.status_code, limited.status_code) == (200, 429)

    def rate_headers(response: httpx.Response) -> set[str]:
        names = {name.lower() for name in response.headers}
        return {name for name in names if name.startswith(("x-ratelimit", "retry-after"))}

    assert on_success <= rate_headers(ok)
    assert on_429 <= rate_headers(limited)
    if told != "full":
        assert rate_headers(ok) == set()
        assert rate_headers(limited) == on_429
