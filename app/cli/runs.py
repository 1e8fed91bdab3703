"""``inf-engine runs``: one input through a stored graph, synchronously."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import ApiKeyOption, UrlOption, connect, fail
from app.cli.output import echo_json
from app.lifecycle import RunStatus


def runs(
    graph: Annotated[str, typer.Argument(help="graph id or name", show_default=False)],
    input_json: Annotated[
        str | None,
        typer.Option("--input", "-i", help='the inputs as a JSON object: \'{"doc1": "..."}\''),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(help="a file holding the inputs' JSON object", exists=True, dir_okay=False),
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="graph version (default: the active one)")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="print every node's record too")
    ] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Run a graph on one input and print its outputs as JSON.

    Exits 1 if a node failed (its error is printed on stderr).

    inf-engine runs extract-and-compare --input '{"doc1": "Cats purr.", "doc2": "Dogs bark."}'
    """
    inputs = _inputs(input_json, input_file)
    with connect(url, api_key) as client:
        answer = client.run(graph, inputs, version=version)
    echo_json(answer if verbose else answer["outputs"])
    if answer["status"] != RunStatus.SUCCEEDED:
        fail("\n".join(_failures(answer)))


def _inputs(text: str | None, path: Path | None) -> dict[str, Any]:
    if text is not None and path is not None:
        raise typer.BadParameter("give --input or --input-file, not both")
    if path is not None:
        return _json_object(path.read_text(encoding="utf-8"), "--input-file")
    if text is None:
        raise typer.BadParameter("give the inputs with --input or --input-file")
    return _json_object(text, "--input")


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter("the inputs must be a JSON object", param_hint=option)
    return value


def _failures(answer: dict[str, Any]) -> list[str]:
    lines = [f"error: the run failed at {', '.join(answer['failed_nodes'])}"]
    for node in answer["failed_nodes"]:
        record = answer["nodes"].get(node, {})
        lines.append(f"  - {node}: {record.get('error_type')}: {record.get('error')}")
    return lines
