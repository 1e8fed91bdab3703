"""A throwaway Postgres cluster of a test's own, which the test may stop and start at will.

The shared test server cannot be stopped (other tests use it), so an outage test makes its
own cluster with the installed binaries (``/usr/lib/postgresql/*/bin``): ``initdb`` in a
temporary directory, ``pg_ctl start`` on a free loopback port. ``initdb`` refuses to run as
root, so as root every command runs as the ``postgres`` user (``runuser``), in a directory it
owns.

    with PgCluster.create(tmp_path) as cluster:
        url = cluster.url            # postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres
        cluster.stop()               # pg_ctl stop -m fast: connections are cut at once
        cluster.start()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port

SERVER_USER = "postgres"


def binaries() -> Path | None:
    """The newest installed Postgres ``bin`` folder with ``initdb`` and ``pg_ctl``, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version)
    for folder in reversed(found):
        path = Path(folder)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _version(folder: str) -> float:
    try:
        return float(Path(folder).parent.name)
    except ValueError:
        return 0.0


def _run_as() -> list[str]:
    """``runuser -u postgres --`` when root (initdb refuses root), else nothing."""
    if os.geteuid() != 0:
        return []
    pwd.getpwnam(SERVER_USER)  # KeyError: no such user
    return ["runuser", "-u", SERVER_USER, "--"]


@dataclass
class PgCluster:
    """One cluster: its folder, port and binaries (see the module docstring)."""

    bin: Path
    root: Path
    port: int

    @classmethod
    def create(cls, bin_dir: Path) -> PgCluster:
        """``initdb`` a new cluster (trust auth, superuser ``postgres``) and start it."""
        root = Path(tempfile.mkdtemp(prefix="pg-outage-"))
        if os.geteuid() == 0:
            shutil.chown(root, SERVER_USER)
        cluster = cls(bin_dir, root, free_port())
        cluster._pg("initdb", "-A", "trust", "-U", "postgres", "-D", str(cluster.data))
        cluster.start()
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", options, "start")

    def stop(self) -> None:
        """Fast shutdown: open transactions are rolled back and every connection is cut."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        subprocess.run(
            [*_run_as(), str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def _pg(self, program: str, *args: str) -> None:
        command = [*_run_as(), str(self.bin / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr[-2000:]}")
