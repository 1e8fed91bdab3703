"""Where webhooks may go: by default a job whose ``webhook_url`` points at loopback, private,
link-local or metadata addresses, in any spelling, is refused at submission (the SSRF probe)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service

# Every spelling resolves to (or is) an address that is not public.
REFUSED_ADDRESSES = [
    "http://127.0.0.1:8000/hook",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://localhost:9/",
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://[::]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "https://127.0.0.1/",
]
# Names that resolve to loopback, or to nothing: refused either way.
REFUSED_NAMES = ["http://localhost./", "http://hooks.localhost/", "http://no-such-host.invalid/"]


async def submit(service: Service, webhook_url: str) -> tuple[int, dict[str, Any]]:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    body = {"graph_id": "echo", "inputs": [{"text": "hi"}], "webhook_url": webhook_url}
    answer = await service.client.post("/v1/jobs", json=body)
    return answer.status_code, answer.json()


async def no_jobs(service: Service) -> bool:
    return (await service.client.get("/v1/jobs")).json()["items"] == []


@pytest.mark.parametrize("url", REFUSED_ADDRESSES)
async def test_non_public_addresses_are_refused_at_submission(service: Service, url: str) -> None:
    status, problem = await submit(service, url)

    assert status == 422
    assert [error["field"] for error in problem["errors"]] == ["webhook_url"]
    assert "is not allowed" in str(problem["detail"])
    assert await no_jobs(service)


@pytest.mark.parametrize("url", REFUSED_NAMES)
async def test_names_of_loopback_or_of_nothing_are_refused(service: Service, url: str) -> None:
    status, problem = await submit(service, url)

    assert status == 422
    assert str(problem["detail"]).startswith("webhook_url: ")
    assert await no_jobs(service)


@pytest.mark.parametrize(
    "url", ["http://user:secret@93.184.215.14/", "ftp://93.184.215.14/", "file:///etc/passwd"]
)
async def test_credentials_and_other_schemes_are_refused(service: Service, url: str) -> None:
    status, problem = await submit(service, url)

    assert status == 422
    assert "webhook_url" in str(problem)
    assert await no_jobs(service)


async def test_an_upload_with_a_loopback_webhook_is_refused(service: Service) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    files = {"inputs": ("in.jsonl", b'{"text": "a"}\n', "application/x-ndjson")}
    fields = {"graph_id": "echo", "webhook_url": "http://[::1]:8000/"}
    answer = await service.client.post("/v1/jobs", data=fields, files=files)

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "webhook_url"
    assert await no_jobs(service)


async def test_a_public_address_is_accepted(service: Service) -> None:
    status, job = await submit(service, "https://93.184.215.14:8443/hooks/inf")

    assert status == 202
    assert job["webhook_url"] == "https://93.184.215.14:8443/hooks/inf"
