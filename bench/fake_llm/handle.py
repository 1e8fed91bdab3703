"""Handle on a fake LLM server subprocess (`python -m bench.fake_llm`) and its control API."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0

__all__ = ["FakeLLM", "FakeLLMError"]


class FakeLLMError(RuntimeError):
    """The fake server failed to start or rejected a control call."""


class FakeLLM:
    """A fake OpenAI/Anthropic-compatible server in a subprocess.

    `FakeLLM(latency_ms=50)` or `FakeLLM().start(latency_ms=50)`; options are the CLI
    flags with underscores (`True` adds a bare flag, `log=False` adds `--no-log`).
    """

    def __init__(self, **cli_options: Any) -> None:
        self.cli_options = cli_options
        self.root_url = ""
        self.returncode: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._client: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        """An OpenAI client's base_url (`<root>/v1`); Anthropic clients take `root_url`."""
        return f"{self.root_url}/v1"

    @property
    def running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, **cli_options: Any) -> Self:
        """Launch the server and wait for its READY line."""
        if self._proc is not None:
            raise FakeLLMError("already started")
        self.returncode = None
        options = {**self.cli_options, **cli_options}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives until stop()
        command = [sys.executable, "-m", "bench.fake_llm", "--host", "127.0.0.1", "--port", "0"]
        self._proc = subprocess.Popen(
            [*command, *_flags(options)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        try:
            self.root_url = self._await_ready()
        except BaseException:
            self.stop()
            raise
        self._client = httpx.Client(base_url=self.root_url, timeout=10.0)
        return self

    def configure(self, **behaviour: Any) -> dict[str, Any]:
        """Replace the server's behaviour wholesale (unspecified fields take defaults)."""
        result: dict[str, Any] = self._call("POST", "/_control/config", json=behaviour)
        return result

    def reset(self) -> None:
        """Clear stats, log, rule budgets and the rate window."""
        self._call("POST", "/_control/reset")

    def stats(self) -> dict[str, Any]:
        """`GET /_stats`."""
        result: dict[str, Any] = self._call("GET", "/_stats")
        return result

    def window(self, window_s: float = 60.0, model_suffix: str = "") -> dict[str, Any]:
        """The busiest ``window_s`` window (requests and tokens served) and the peak in flight
        of the logged requests whose model ends with ``model_suffix`` (needs ``log=True``)."""
        params = {"window_s": window_s, "model_suffix": model_suffix}
        result: dict[str, Any] = self._call("GET", "/_stats", params=params)["window"]
        return result

    def log(self) -> list[dict[str, Any]]:
        """`GET /_log`: request log entries in arrival order."""
        result: list[dict[str, Any]] = self._call("GET", "/_log")
        return result

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL if needed; release every resource. Idempotent."""
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc)
            self.returncode = proc.returncode
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._client is None:
            raise FakeLLMError("the fake LLM server is not running")
        response = self._client.request(method, path, **kwargs)
        if response.status_code != 200:
            raise FakeLLMError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    def _await_ready(self) -> str:
        """Read stdout until `READY <url>`; raise with stderr if the process dies or stalls."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise FakeLLMError("not started")
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + READY_TIMEOUT_S
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FakeLLMError(f"no READY line within {READY_TIMEOUT_S}s{self._stderr_tail()}")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                    raise FakeLLMError(f"exited with {proc.returncode}{self._stderr_tail()}")
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode().strip()
        if not line.startswith("READY "):
            raise FakeLLMError(f"unexpected first line {line!r}{self._stderr_tail()}")
        return line.removeprefix("READY ")

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read()[-4000:].decode(errors="replace").strip()
        return f"; stderr:\n{text}" if text else "; stderr is empty"


def _flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False:
            flags.append("--no-" + name.replace("_", "-"))
        elif value is not None:
            flags += [flag, str(value)]
    return flags


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
