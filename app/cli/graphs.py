"""``inf-engine graphs``: upload a graph (a file, or a traced Python module), list them, and
promote or roll back the active version."""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import ApiKeyOption, JsonOption, UrlOption, connect, fail
from app.cli.output import echo_fields, echo_json, echo_table

MODULE_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")

app = typer.Typer(
    help="Pipeline graphs: upload, list, promote and roll back.", no_args_is_help=True
)
GraphId = Annotated[str, typer.Argument(help="graph id or name", show_default=False)]


@app.command("push")
def push(
    source: Annotated[
        str,
        typer.Argument(
            help="a .json/.yaml graph file, or module:attr naming an InferenceModule "
            "(an instance, a class or a factory taking no arguments)",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="graph name for module:attr (default: the class name)")
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a graph and make it the active version; the same content again keeps its
    version number (and makes it active again).

    inf-engine graphs push examples/graphs/extract-and-compare.json

    inf-engine graphs push my_pipelines:ExtractAndCompare --name extract-and-compare
    """
    graph = _graph_source(source, name)
    with connect(url, api_key) as client:
        stored = client.push_graph(graph)
    if as_json:
        echo_json(stored)
        return
    state = "new version" if stored.get("created") else "unchanged: this content is stored already"
    echo_fields(
        [
            ("graph", f"{stored['name']} ({state})"),
            ("id", stored["id"]),
            ("version", stored["version"]),
            ("active version", stored.get("active_version")),
            ("hash", stored["hash"]),
        ]
    )


@app.command("list")
def list_graphs(url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """The graphs with their active version (what a job naming no version runs)."""
    with connect(url, api_key) as client:
        rows = [
            (graph["name"], graph["version"], graph["id"], graph["hash"], graph["created_at"])
            for graph in client.graphs()
        ]
    echo_table(("NAME", "VERSION", "ID", "HASH", "CREATED"), rows)


@app.command("promote")
def promote(
    graph: GraphId,
    version: Annotated[int, typer.Argument(help="the version to make active", min=1)],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make VERSION the active one: jobs and runs naming no version use it from now on.

    inf-engine graphs promote extract-and-compare 2
    """
    with connect(url, api_key) as client:
        _echo_move(client.promote(graph, version), as_json)


@app.command("rollback")
def rollback(
    graph: GraphId,
    version: Annotated[
        int | None, typer.Option(help="go to this version (default: the one active before)")
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move the active version back to the one active before the last move.

    inf-engine graphs rollback extract-and-compare
    """
    with connect(url, api_key) as client:
        _echo_move(client.rollback(graph, version), as_json)


def _echo_move(moved: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(moved)
        return
    echo_fields(
        [
            ("graph", moved["name"]),
            ("active version", moved["active_version"]),
            ("previous version", moved["previous_version"]),
        ]
    )


def _graph_source(source: str, name: str | None) -> dict[str, Any] | Path:
    path = Path(source)
    if path.is_file():
        if name is not None:
            raise typer.BadParameter("--name is for module:attr; a file names its graph itself")
        return path
    if MODULE_REFERENCE.fullmatch(source):
        return traced_graph(source, name)
    raise typer.BadParameter(f"no such file {source!r} (give a .json/.yaml file or module:attr)")


def traced_graph(reference: str, name: str | None = None) -> dict[str, Any]:
    """The graph of the ``InferenceModule`` that ``module:attr`` names, traced.

    ``traced_graph("examples.router:Router")["nodes"]``
    """
    from app.engine import EngineError, to_data, trace

    module = _module(reference)
    try:
        return to_data(trace(module, name=name))
    except EngineError as exc:
        fail(f"error: cannot trace {reference}: {exc}")


def _module(reference: str) -> Any:
    from app.engine import InferenceModule

    target = _attribute(reference)
    if isinstance(target, InferenceModule):
        return target
    if not callable(target):
        fail(f"error: {reference} is not an InferenceModule, a subclass or a factory of one")
    try:
        made = target()
    except TypeError as exc:
        fail(f"error: {reference} cannot be called without arguments: {exc}")
    if not isinstance(made, InferenceModule):
        fail(f"error: {reference}() returned {type(made).__name__}, not an InferenceModule")
    return made


def _attribute(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        fail(f"error: {reference!r} is not module:attr")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as ``python -m`` would: modules of this directory
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        fail(f"error: cannot import {module_name}: {exc}")
    for part in attribute.split("."):
        if not hasattr(target, part):
            fail(f"error: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    return target
