"""The deployment files of the repository, read for the tests in this folder."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "inf-engine.json"
GRAFANA_DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "inf-engine.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ENDPOINTS = DEPLOY / "endpoints.yaml"
SERVICE_LOCK = ROOT / "requirements" / "service.lock"
DEV_LOCK = ROOT / "requirements" / "dev.lock"


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document YAML file."""
    text = path.read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# -- lock files --------------------------------------------------------------------------------

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def lock_pins(path: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line (names normalized as PEP 503 does)."""
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"{path.name}: not a name==version pin: {raw!r}")
        pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return pins


# -- Dockerfile --------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the logical line, continuation lines joined

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/RUN, or ``None`` (shell form)."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list), self
        return [str(item) for item in value]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]

    def args(self) -> dict[str, str]:
        """``ARG NAME=default`` declarations of the stage."""
        return dict(_pairs(i.args) for i in self.all("ARG"))

    def env(self) -> dict[str, str]:
        """Every ``ENV`` of the stage (``K=V`` pairs, later ones win)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.args):
                key, _, value = word.partition("=")
                values[key] = value
        return values


def _pairs(text: str) -> tuple[str, str]:
    key, _, value = text.strip().partition("=")
    return key, value


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, ``\\`` continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comment lines are dropped even inside a continuation
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        logical = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = logical.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The build stages of a Dockerfile, in order (``ARG`` before the first ``FROM`` dropped)."""
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(path.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def shell_commands(run: Instruction) -> list[list[str]]:
    """The simple commands of a shell-form ``RUN``, split on ``&&``, ``;`` and ``||``."""
    commands: list[list[str]] = []
    current: list[str] = []
    lexer = shlex.shlex(run.args, posix=True, punctuation_chars=";&|>")
    lexer.whitespace_split = True
    for token in lexer:
        if token in {"&&", ";", "||", "|"}:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def image_uid(stage: Stage) -> int:
    """The numeric uid of the stage's last ``USER`` (``uid`` or ``uid:gid``)."""
    user = stage.last("USER").args.split(":", 1)[0]
    assert user.isdigit(), f"USER {user!r} is not numeric: Kubernetes cannot check runAsNonRoot"
    return int(user)
