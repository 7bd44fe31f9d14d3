"""Faults: an unreachable or dying tracking server, a locked SQLite store,
signals during training."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    SHRUNK,
    MlflowServer,
    dvc,
    free_port,
    git,
    mlflow_server_process,
    python,
    run,
    tool_env,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy with data generated and split, ready for a long training run."""
    from tests.conftest import copy_repository

    # a path with spaces and non-ASCII letters, used under LANG=C throughout
    root = copy_repository(
        tmp_path_factory.mktemp("faults") / "dir with spaces ü" / "repo"
    )
    run(
        python("-m", "pipeline.compose", *SHRUNK, "train.epochs=100000"),
        root,
        **C_LOCALE,
    )
    git(root, "commit", "-q", "-am", "long training")
    run(python("-m", "pipeline.generate"), root, **C_LOCALE)
    run(python("-m", "pipeline.split"), root, **C_LOCALE)
    return root


C_LOCALE = {"LANG": "C", "LC_ALL": "C"}


def start_stage(
    root: Path, command: list[str], *, until: str, **extra: str
) -> subprocess.Popen[str]:
    """Start ``command`` in its own session; return once its stderr shows ``until``.

    The rest of its stderr stays in the pipe, for ``communicate``.
    """
    process = subprocess.Popen(
        command,
        cwd=root,
        env=tool_env(**C_LOCALE, **extra),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if until in line:
            return process
    process.wait()
    raise AssertionError(f"{' '.join(command)} exited {process.returncode}")


def start_training(root: Path, *command: str, **extra: str) -> subprocess.Popen[str]:
    """Start a long training stage; return once it is inside ``model.fit``."""
    process = start_stage(
        root,
        list(command) or python("-m", "pipeline.train"),
        until="rows for up to",
        **extra,
    )
    time.sleep(3)
    return process


@contextlib.contextmanager
def epochs(root: Path, count: int) -> Iterator[None]:
    """Train for ``count`` epochs in the block, instead of the long run."""
    import yaml

    params = root / "params.yaml"
    before = params.read_text()
    raw = yaml.safe_load(before)
    raw["train"]["epochs"] = count
    params.write_text(yaml.safe_dump(raw))
    try:
        yield
    finally:
        params.write_text(before)


def error_lines(stderr: str) -> list[str]:
    """The lines a stage printed as its error (DVC's own start with ``ERROR``)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_unreachable_server_fails_fast_with_one_line(prepared: Path) -> None:
    uri = f"http://alice:s3cret@127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = run(
        python("-m", "pipeline.split"), prepared, check=False, MLFLOW_TRACKING_URI=uri
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: MLflow tracking store http://127.0.0.1:")
    assert "s3cret" not in done.stderr and "alice" not in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 60


def test_unreachable_server_leaves_no_model(prepared: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    done = run(
        python("-m", "pipeline.train"), prepared, check=False, MLFLOW_TRACKING_URI=uri
    )
    assert done.returncode == 1
    assert not (prepared / "models").exists()


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
)
def test_signal_during_training_kills_run_and_leaves_no_outputs(
    prepared: Path, signum: int, code: int
) -> None:
    from mlflow.tracking import MlflowClient

    process = start_training(prepared)
    process.send_signal(signum)
    assert process.wait(timeout=120) == code
    assert not (prepared / "models").exists()
    # the last good reports (committed) are untouched
    assert git(prepared, "status", "--porcelain", "reports") == ""
    leftovers = [p.name for p in (prepared / "reports").rglob(".*.tmp")]
    assert leftovers == []

    client = MlflowClient(tracking_uri=f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("overfitting-study")
    (latest,) = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`pipeline.stage` = 'train'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    assert latest.info.status == "KILLED"
    parent = client.get_run(latest.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "KILLED"


def test_sigkill_then_rerun_succeeds(prepared: Path) -> None:
    process = start_training(prepared)
    process.kill()
    process.wait(timeout=60)
    assert not (prepared / "models").exists()

    with epochs(prepared, 2):
        run(python("-m", "pipeline.train"), prepared, **C_LOCALE)
    assert (prepared / "models/model.keras").is_file()


def test_second_repro_in_the_same_workspace_is_refused(prepared: Path) -> None:
    import os

    first = start_training(prepared, *dvc("repro", "--single-item", "train"))
    try:
        second = run(dvc("repro"), prepared, check=False)
        assert second.returncode != 0
        assert "lock" in (second.stderr + second.stdout).lower()
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=120)


def test_credentials_in_tracking_uri_are_never_stored(
    prepared: Path, mlflow_server: MlflowServer
) -> None:
    secret = "planted-secret-7f3a"
    uri = mlflow_server.uri.replace("http://", f"http://alice:{secret}@")
    done = run(python("-m", "pipeline.split"), prepared, MLFLOW_TRACKING_URI=uri)
    assert secret not in done.stdout + done.stderr
    for path in [*mlflow_server.folder.rglob("*"), *(prepared / "data").rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_server_killed_during_training_stops_repro_then_rerun_succeeds(
    prepared: Path, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    # a check of the server every second instead of every 15
    env = {"MLFLOW_TRACKING_URI": uri, "PIPELINE_TRACKING_HEARTBEAT": "1"}
    run(dvc("commit", "--force", "generate", "split"), prepared)
    lock = (prepared / "dvc.lock").read_bytes()

    with mlflow_server_process(tmp_path, port) as server:
        repro = start_training(prepared, *dvc("repro", "train"), **env)
        os.killpg(server.pid, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = repro.communicate(timeout=120)
        elapsed = time.monotonic() - killed

    assert repro.returncode != 0
    assert elapsed < 60, f"took {elapsed:.0f} s to notice"
    (error,) = error_lines(stderr)
    # "Connection refused", or "connection lost" when a check was under way
    assert error.startswith(
        f"error: MLflow tracking store {uri} stopped answering during stage train ("
    )
    assert error.endswith(
        "); restart it or set MLFLOW_TRACKING_URI, then rerun `dvc repro`"
    )
    assert "API request" not in error
    assert "Traceback" not in stderr
    assert not (prepared / "models/model.keras").exists()
    assert list(prepared.glob("models/.*.tmp")) == []
    assert (prepared / "dvc.lock").read_bytes() == lock

    with mlflow_server_process(tmp_path, port), epochs(prepared, 2):
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("overfitting-study")

        def statuses() -> list[tuple[str, str]]:
            """Each train run's status and its parent's, latest first."""
            runs = client.search_runs(
                [experiment.experiment_id],
                filter_string="tags.`pipeline.stage` = 'train'",
                order_by=["start_time DESC"],
            )
            parent = "mlflow.parentRunId"
            return [
                (r.info.status, client.get_run(r.data.tags[parent]).info.status)
                for r in runs
            ]

        # nothing could tell the dead server that the attempt had failed
        assert statuses() == [("RUNNING", "RUNNING")]
        run(dvc("repro", "train"), prepared, **env)
        # the rerun ends the abandoned runs before it starts its own
        assert statuses() == [("FINISHED", "FINISHED"), ("FAILED", "FAILED")]

    assert (prepared / "models/model.keras").is_file()


@contextlib.contextmanager
def write_lock(database: Path) -> Iterator[Callable[[], None]]:
    """Hold SQLite's exclusive lock on ``database``, as a busy writer would.

    Yields a function that releases the lock before the block ends.
    """
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")

    def release() -> None:
        if connection.in_transaction:
            connection.execute("ROLLBACK")

    try:
        yield release
    finally:
        release()
        connection.close()


def latest_runs(root: Path, stage: str) -> tuple[Any, Any]:
    """The latest MLflow run of ``stage`` in ``root``'s store, and its parent."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("overfitting-study")
    (latest,) = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`pipeline.stage` = '{stage}'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    return latest, client.get_run(latest.data.tags["mlflow.parentRunId"])


def locked_message(store: Path, seconds: int) -> str:
    return (
        f"error: MLflow tracking store {store} is locked by another process "
        f"(waited {seconds} s, PIPELINE_SQLITE_TIMEOUT); let that process finish "
        "or stop it, then rerun `dvc repro`"
    )


def test_locked_store_fails_after_the_timeout_with_one_line(prepared: Path) -> None:
    store = prepared / "mlflow.db"
    outputs = {p: p.read_bytes() for p in (prepared / "data/split").iterdir()}

    with write_lock(store):
        started = time.monotonic()
        done = run(
            python("-m", "pipeline.split"),
            prepared,
            check=False,
            PIPELINE_SQLITE_TIMEOUT="2",
            **C_LOCALE,
        )
        elapsed = time.monotonic() - started

    assert done.returncode == 1
    assert error_lines(done.stderr) == [locked_message(store, 2)]
    assert "Traceback" not in done.stderr
    assert elapsed < 60
    assert {p: p.read_bytes() for p in (prepared / "data/split").iterdir()} == outputs


def test_locked_store_released_within_the_timeout_lets_the_stage_finish(
    prepared: Path,
) -> None:
    with write_lock(prepared / "mlflow.db") as release:
        process = start_stage(
            prepared,
            python("-m", "pipeline.split"),
            until="opening MLflow tracking store",
            PIPELINE_SQLITE_TIMEOUT="60",
        )
        # longer than the 5 s MLflow itself would wait while opening the store
        time.sleep(7)
        assert process.poll() is None
        release()
        _, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    child, parent = latest_runs(prepared, "split")
    assert (child.info.status, parent.info.status) == ("FINISHED", "FINISHED")


def test_store_locked_mid_run_fails_within_the_timeout(prepared: Path) -> None:
    store = prepared / "mlflow.db"
    with epochs(prepared, 3):
        process = start_stage(
            prepared,
            python("-m", "pipeline.train"),
            until="rows for up to",
            PIPELINE_SQLITE_TIMEOUT="2",
        )
        # taken while the model trains: logging its results and ending its run wait
        with write_lock(store):
            locked = time.monotonic()
            _, stderr = process.communicate(timeout=120)
            elapsed = time.monotonic() - locked
        git(prepared, "checkout", "--", "reports")

    assert process.returncode == 1
    assert error_lines(stderr) == [locked_message(store, 2)]
    assert "Traceback" not in stderr
    # training included; MLflow alone would wait 20 s for each of the two calls
    # (log the results, end the run)
    assert elapsed < 35
    assert list(prepared.glob("**/.*.tmp")) == []


def test_store_locked_mid_run_waits_then_logs_and_ends_the_run(prepared: Path) -> None:
    with epochs(prepared, 3):
        process = start_stage(
            prepared,
            python("-m", "pipeline.train"),
            until="rows for up to",
            PIPELINE_SQLITE_TIMEOUT="60",
        )
        with write_lock(prepared / "mlflow.db") as release:
            # training ends within seconds; logging its results then waits
            time.sleep(8)
            assert process.poll() is None
            release()
            _, stderr = process.communicate(timeout=120)
        git(prepared, "checkout", "--", "reports")

    assert process.returncode == 0, stderr
    child, parent = latest_runs(prepared, "train")
    assert (child.info.status, parent.info.status) == ("FINISHED", "FINISHED")
    assert "final_loss" in child.data.metrics
    assert "loss" in parent.data.metrics
