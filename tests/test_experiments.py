"""A queued sweep of model options, run two at a time by DVC."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import SHRUNK, copy_repository, dvc, git, python, run

pytestmark = pytest.mark.slow

# two of the four model options keep CI short; `make study` queues five
MODELS = ("baseline", "l2_dropout")
# the sweep's own shrinking: no cross-validation, so no TensorFlow in crossval
SWEEP = (*SHRUNK, "evaluate.cross_validation.enabled=false")


def wait_for_queue(root: Path, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run(dvc("queue", "status"), root).stdout
        if "Running" not in status and "Queued" not in status:
            return status
        time.sleep(5)
    raise AssertionError(f"queue still busy after {timeout} s:\n{status}")


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_repository(tmp_path_factory.mktemp("sweep") / "repo")
    run(python("-m", "pipeline.compose", *SWEEP), root)
    git(root, "commit", "-q", "-am", "shrunk config")
    sets = [arg for override in SWEEP for arg in ("-S", override)]
    run(dvc("exp", "run", "--queue", "-S", f"model={','.join(MODELS)}", *sets), root)
    run(dvc("queue", "start", "-j", "2"), root)
    status = wait_for_queue(root)
    assert "Failed" not in status, status
    return root


def test_sweep_lists_every_experiment_with_its_options(swept: Path) -> None:
    import dvc.api

    rows = dvc.api.exp_show(repo=str(swept))
    experiments = [row for row in rows if row.get("typ") != "baseline"]
    assert sorted(row["model.name"] for row in experiments) == sorted(MODELS)
    for row in experiments:
        assert row["train.epochs"] == 6
        assert 0 < row["test.accuracy"] <= 1
        assert row["Experiment"]


def test_sweep_logs_each_experiment_into_the_repository_store(swept: Path) -> None:
    from mlflow.tracking import MlflowClient

    assert not list((swept / ".dvc" / "tmp").rglob("mlflow.db"))
    client = MlflowClient(tracking_uri=f"sqlite:///{swept / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("overfitting-study")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.data.params["model.name"] for r in parents) == sorted(MODELS)
    for parent in parents:
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["dvc.experiment"] == parent.info.run_name
        assert "test.accuracy" in parent.data.metrics
        children = [
            r
            for r in runs
            if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        ]
        names = [c.info.run_name for c in children]
        # generate and split may come from DVC's run cache: then they log nothing
        assert set(names) >= {"train", "crossval", "evaluate", "plot"}
        assert set(names) <= {
            "generate",
            "split",
            "train",
            "crossval",
            "evaluate",
            "plot",
        }
        assert len(names) == len(set(names))
        assert all(c.info.status == "FINISHED" for c in children)
    stages = [r.info.run_name for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert "generate" in stages and "split" in stages


def test_plots_diff_renders_two_experiments(swept: Path) -> None:
    from dvc.api import exp_show

    names = [
        row["Experiment"] for row in exp_show(repo=str(swept)) if row.get("Experiment")
    ]
    names = names[:2]
    out = swept / "diff"
    run(dvc("plots", "diff", *names, "-o", str(out)), swept)
    page = (out / "index.html").read_text()
    for name in names:
        assert name in page
    assert "Accuracy per epoch" in page
