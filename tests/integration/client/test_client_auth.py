"""``Client(api_key=...)`` on a service that requires keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.cli.server import create_api_key
from app.client import Client, ClientError
from tests.integration.client.support import ECHO_GRAPH, serve_in_thread, service_settings
from tests.support.fake_llm import FakeLLM


def test_the_api_key_is_sent_as_a_bearer_token(tmp_path: Path, fake_llm: FakeLLM) -> None:
    settings = service_settings(tmp_path, fake_llm, auth_mode="keys")
    key = asyncio.run(create_api_key(settings, "acme", "client test"))

    with (
        serve_in_thread(settings) as url,
        Client(url, api_key=key) as member,
        Client(url) as stranger,
    ):
        pushed = member.push_graph(ECHO_GRAPH)
        listed = [graph["name"] for graph in member.graphs()]
        with pytest.raises(ClientError) as refused:
            list(stranger.graphs())

    assert (pushed["name"], listed) == ("echo", ["echo"])
    assert (refused.value.status, refused.value.type) == (
        401,
        "urn:inf-engine:problem:unauthorized",
    )
