"""``Client.events`` across a connection that breaks mid-job: every event once, in order."""

from __future__ import annotations

from urllib.parse import urlsplit

from app.client import Client
from tests.integration.client.support import ECHO_GRAPH, CuttingProxy
from tests.support.fake_llm import FakeLLM

ITEMS = 60
CUT_AFTER = 5


def test_a_dropped_stream_resumes_without_loss_or_repeats(
    client: Client, service_url: str, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=30)
    client.push_graph(ECHO_GRAPH)
    job = client.submit("echo", [{"text": f"doc {i}"} for i in range(ITEMS)])
    port = urlsplit(service_url).port
    assert port is not None

    with CuttingProxy(port, events=CUT_AFTER) as proxy, Client(proxy.url) as through_proxy:
        seen = list(through_proxy.events(job["id"]))

    assert proxy.cut.is_set()
    ids = [event.id for event in seen]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # increasing, no gap, no repeat
    assert seen[-1].kind == "job_completed"
    everything = [(event.id, event.kind, event.data) for event in client.events(job["id"])]
    assert [(event.id, event.kind, event.data) for event in seen] == everything
    streams = [head.lower() for head in proxy.heads if "/events" in head.split("\r\n", 1)[0]]
    assert len(streams) == 2
    assert "last-event-id: 0\r\n" in streams[0]
    assert f"last-event-id: {seen[CUT_AFTER - 1].id}\r\n" in streams[1]
    succeeded = [
        index for event in seen if event.kind == "items_succeeded" for index in event.items
    ]
    assert sorted(succeeded) == list(range(ITEMS))
    assert [event.kind for event in seen[:2]] == ["job_submitted", "job_started"]
