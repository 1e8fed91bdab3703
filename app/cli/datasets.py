"""``inf-engine datasets``: upload a JSONL dataset, list them, show one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import ApiKeyOption, JsonOption, UrlOption, connect
from app.cli.output import echo_fields, echo_json, echo_table

app = typer.Typer(
    help="Datasets of input/expected items: upload, list, show.", no_args_is_help=True
)


@app.command("push")
def push(
    file: Annotated[
        Path,
        typer.Argument(
            help='JSONL file: one {"input": {...}, "expected": ..., "id"?: ...} a line',
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ],
    name: Annotated[str, typer.Option(help="the dataset's name", show_default=False)],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a dataset; the same content again answers the stored one.

    inf-engine datasets push examples/datasets/qa.jsonl --name qa
    """
    with connect(url, api_key) as client:
        stored = client.push_dataset(file, name=name)
    if as_json:
        echo_json(stored)
        return
    state = "new" if stored.get("created") else "unchanged: this content is stored already"
    echo_fields(
        [
            ("dataset", f"{stored['name']} ({state})"),
            ("id", stored["id"]),
            ("items", stored["count"]),
            ("hash", stored["hash"]),
        ]
    )


@app.command("list")
def list_datasets(url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """The datasets, newest first."""
    with connect(url, api_key) as client:
        rows = [
            (found["name"], found["count"], found["id"], found["hash"], found["created_at"])
            for found in client.datasets()
        ]
    echo_table(("NAME", "ITEMS", "ID", "HASH", "CREATED"), rows)


@app.command("show")
def show(
    dataset_id: Annotated[str, typer.Argument(help="the dataset's id", show_default=False)],
    items: Annotated[bool, typer.Option("--items", help="print its items as JSONL")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """A dataset's name, item count, hash and creation time (``--items``: its items)."""
    with connect(url, api_key) as client:
        if items:
            for item in client.dataset_items(dataset_id):
                echo_json(item, indent=None)
            return
        found = client.dataset(dataset_id)
    if as_json:
        echo_json(found)
        return
    echo_fields(
        [
            ("dataset", found["name"]),
            ("id", found["id"]),
            ("items", found["count"]),
            ("hash", found["hash"]),
            ("created", found["created_at"]),
        ]
    )
