"""Faults: an unreachable tracking server, signals during training."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import SHRUNK, free_port, git, python, run, tool_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy with data generated and split, ready for a long training run."""
    from tests.conftest import copy_repository

    root = copy_repository(tmp_path_factory.mktemp("faults") / "repo")
    run(python("-m", "pipeline.compose", *SHRUNK, "train.epochs=100000"), root)
    git(root, "commit", "-q", "-am", "long training")
    run(python("-m", "pipeline.generate"), root)
    run(python("-m", "pipeline.split"), root)
    return root


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

    process = subprocess.Popen(
        python("-m", "pipeline.train"),
        cwd=prepared,
        env=tool_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "training" in line and "rows for up to" in line:
            break
    time.sleep(3)  # inside model.fit
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
