"""Faults: an unreachable tracking server, signals during training."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import (
    SHRUNK,
    MlflowServer,
    dvc,
    free_port,
    git,
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


def start_training(root: Path, *command: str) -> subprocess.Popen[str]:
    """Start a long training stage; return once it is inside ``model.fit``."""
    process = subprocess.Popen(
        list(command) or python("-m", "pipeline.train"),
        cwd=root,
        env=tool_env(**C_LOCALE),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "rows for up to" in line:
            break
    time.sleep(3)
    return process


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
    import yaml

    process = start_training(prepared)
    process.kill()
    process.wait(timeout=60)
    assert not (prepared / "models").exists()

    params = prepared / "params.yaml"
    before = params.read_text()
    raw = yaml.safe_load(before)
    raw["train"]["epochs"] = 2
    params.write_text(yaml.safe_dump(raw))
    try:
        run(python("-m", "pipeline.train"), prepared, **C_LOCALE)
    finally:
        params.write_text(before)
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
