"""``inf-engine jobs list`` on a narrow terminal: whole job ids (to paste into the other job
commands) and graphs by name."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.client import Client
from tests.integration.client.support import ECHO_GRAPH

INPUTS = [{"text": "a"}]


def jobs_cli(service_url: str, *args: str) -> Result:
    """The command as on an 80-column terminal (rich draws its table there)."""
    env = {"INF_URL": service_url, "TTY_COMPATIBLE": "1", "COLUMNS": "80"}
    return CliRunner().invoke(app, ["jobs", *args], env=env)


@pytest.fixture
def job_ids(client: Client) -> list[str]:
    client.push_graph(ECHO_GRAPH)
    return [client.submit("echo", INPUTS)["id"] for _ in range(2)]


def test_the_listing_shows_whole_ids_and_graph_names(
    service_url: str, client: Client, job_ids: list[str]
) -> None:
    graph_id = client.graph("echo")["id"]

    listed = jobs_cli(service_url, "list")

    assert listed.exit_code == 0, listed.output
    for job_id in job_ids:
        assert job_id in listed.output
    assert "echo v1" in listed.output
    assert graph_id not in listed.output


def test_an_id_from_the_listing_works_in_the_other_commands(
    service_url: str, job_ids: list[str]
) -> None:
    listed = jobs_cli(service_url, "list")
    first = listed.output.splitlines()[1].split()[0]  # the newest job's row, under the headers

    shown = jobs_cli(service_url, "status", first)

    assert shown.exit_code == 0, shown.output
    assert first == job_ids[-1]
