"""``app.client`` needs only the stdlib, httpx and httpx-sse (and ``app.signing`` and
``app.lifecycle``), so that users can install and import it without the server's dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.architecture.test_layers import imports_of

ROOT = Path(__file__).resolve().parents[3]
ALLOWED_THIRD_PARTY = {"httpx", "httpx_sse"}
ALLOWED_APP = {"app.signing", "app.lifecycle"}
# Not rich: httpx itself imports it (for its own command line) wherever it is installed.
SERVER_ONLY = [
    "fastapi",
    "starlette",
    "sqlalchemy",
    "pydantic",
    "pydantic_settings",
    "yaml",
    "aiohttp",
    "uvicorn",
    "typer",
    "prometheus_client",
]


def disallowed(names: list[str]) -> list[str]:
    """The imported module names that ``app.client`` may not import."""
    return [name for name in names if not _allowed(name)]


def _allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top == "app":
        return name in ALLOWED_APP or name == "app.client" or name.startswith("app.client.")
    return top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY


def test_client_imports_only_stdlib_httpx_and_signing() -> None:
    files = [*sorted((ROOT / "app" / "client").rglob("*.py")), ROOT / "app" / "signing.py"]
    found = {str(path.relative_to(ROOT)): disallowed(imports_of(path)) for path in files}

    assert len(found) > 2
    assert {path: names for path, names in found.items() if names} == {}
    assert imports_of(ROOT / "app" / "__init__.py") == []  # importing app.client runs it


def test_the_check_sees_server_imports(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.py"
    leaky.write_text(
        "import httpx\nfrom app.settings import ClientSettings\n"
        "def f():\n    import pydantic\n    from app.client import events\n"
    )
    assert disallowed(imports_of(leaky)) == ["app.settings", "pydantic"]


def test_importing_the_client_loads_no_server_dependency() -> None:
    probe = (
        "import json, sys; import app.client; "
        f"print(json.dumps(sorted(m for m in {SERVER_ONLY!r} if m in sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(loaded.stdout) == []
