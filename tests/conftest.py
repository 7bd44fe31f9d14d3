"""Shared fixtures: the repository, shrunk configs and temporary copies of it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# a configuration small enough that a full `dvc repro` takes about a minute
SHRUNK = (
    "data.n_samples=240",
    "model.hidden_units=[16,8]",
    "train.epochs=6",
    "train.learning_rate=0.01",
    "evaluate.cross_validation.n_splits=2",
)


def tracked_files(root: Path) -> list[str]:
    """Files git tracks or would track (untracked, not ignored) under ``root``."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listing.split("\0") if name and (root / name).exists()]


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout


def copy_repository(target: Path) -> Path:
    """Copy the repository's files to ``target`` as a fresh git repository."""
    for name in tracked_files(REPO):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, destination)
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "copy for a test")
    return target


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for running the venv's tools, without tracking overrides."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "DVC_"))
    }
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env.update(extra)
    return env


def run(
    command: Sequence[str], cwd: Path, *, check: bool = True, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run a command with the venv's tools; show its output when it fails."""
    completed = subprocess.run(
        list(command), cwd=cwd, env=tool_env(**extra), capture_output=True, text=True
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {completed.returncode}\n"
            f"stdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-6000:]}"
        )
    return completed


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A fresh copy of the repository in a temporary folder."""
    return copy_repository(tmp_path / "repo")


def pytest_configure(config: pytest.Config) -> None:
    # the same TensorFlow settings the stages apply, before any test imports it
    from pipeline.runtime import environment_for
    from pipeline.schema import RuntimeConfig

    os.environ.update(environment_for(RuntimeConfig()))


@dataclass(frozen=True)
class MlflowServer:
    """A running test server: its URI and the folder with its database."""

    uri: str
    folder: Path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server_process(folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A real `mlflow server` on 127.0.0.1:``port``, SQLite and artifacts in
    ``folder``, in a process group of its own that is killed whole on exit.

    A test may kill it; starting it again on the same folder and port is a
    restart on the same backend store.
    """
    log = open(folder / "server.log", "a")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        python(
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ),
        # no background job runner: it only slows the start down
        env=tool_env(
            MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{port}/health"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "server.log").read_text()[-3000:])
            time.sleep(0.3)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` on a free loopback port, SQLite behind it."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    with mlflow_server_process(folder, port):
        yield MlflowServer(f"http://127.0.0.1:{port}", folder)
