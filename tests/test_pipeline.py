"""End to end: the real `dvc repro` on a shrunk config in a temporary copy.

The tests in this module share one copy of the repository and run in file
order: the first reproduces the pipeline, later ones rerun it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import SHRUNK, copy_repository, dvc, git, python, run

STAGES = ["generate", "split", "train", "crossval", "evaluate", "plot"]
PLOTS = [
    "calibration.png",
    "confusion_matrix.png",
    "cross_validation.png",
    "learning_curves.png",
    "precision_recall.png",
    "roc.png",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_repository(tmp_path_factory.mktemp("pipeline") / "repo")
    run(python("-m", "pipeline.compose", *SHRUNK), root)
    git(root, "commit", "-q", "-am", "shrunk config")
    done = run(dvc("repro"), root)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in done.stdout
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "reproduced")
    return root


def mlflow_client(root: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def top_level_runs(root: Path) -> list:
    client = mlflow_client(root)
    experiment = client.get_experiment_by_name("overfitting-study")
    runs = client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def children_of(root: Path, parent_id: str) -> list:
    client = mlflow_client(root)
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        order_by=["start_time ASC"],
    )


def test_repro_writes_every_output(workspace: Path) -> None:
    X = np.load(workspace / "data/raw/X.npy")
    assert X.shape == (240, 20) and X.dtype == np.float32
    parts = {p.stem: np.load(p) for p in (workspace / "data/split").glob("*.npy")}
    assert len(parts["y_test"]) == 48 and len(parts["y_train"]) == 192

    history = (workspace / "reports/train/history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,accuracy,val_loss,val_accuracy"
    assert len(history) == 1 + 6

    metrics = json.loads((workspace / "reports/evaluate/metrics.json").read_text())
    assert 0.5 < metrics["test"]["accuracy"] <= 1
    assert metrics["gap"]["accuracy"] == pytest.approx(
        metrics["train"]["accuracy"] - metrics["test"]["accuracy"], abs=1e-6
    )
    folds = json.loads((workspace / "reports/crossval/metrics.json").read_text())
    assert folds["n_splits"] == 2

    assert sorted(p.name for p in (workspace / "plots").iterdir()) == PLOTS
    assert (workspace / "models/model.keras").stat().st_size > 1000

    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    assert list(lock["stages"]) == STAGES
    assert run(dvc("status"), workspace).stdout.strip().endswith("up to date.")


def test_repro_logs_one_top_level_run_with_a_child_per_stage(workspace: Path) -> None:
    client = mlflow_client(workspace)
    (parent,) = top_level_runs(workspace)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["model.hidden_units"] == "[16, 8]"
    assert parent.data.params["train.epochs"] == "6"
    assert parent.data.params["seed"] == "42"
    assert 0.5 < parent.data.metrics["test.accuracy"] <= 1
    assert "gap.accuracy" in parent.data.metrics
    assert "cv.mean.accuracy" in parent.data.metrics
    assert len(client.get_metric_history(parent.info.run_id, "val_accuracy")) == 6
    assert parent.data.tags["git.dirty"] == "false"
    assert len(parent.data.tags["mlflow.source.git.commit"]) == 40

    children = children_of(workspace, parent.info.run_id)
    assert [child.info.run_name for child in children] == STAGES
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["pipeline.stage"] == child.info.run_name

    by_stage = {child.info.run_name: child for child in children}
    assert by_stage["generate"].data.params["data.n_samples"] == "240"
    assert by_stage["split"].data.metrics["n_test"] == 48
    assert by_stage["train"].data.metrics["epochs_run"] == 6
    plots = client.list_artifacts(by_stage["plot"].info.run_id, "plots")
    assert sorted(Path(a.path).name for a in plots) == PLOTS
    reports = client.list_artifacts(by_stage["evaluate"].info.run_id)
    assert "metrics.json" in {Path(a.path).name for a in reports}


def test_outputs_hold_no_run_ids_or_host_names(workspace: Path) -> None:
    import socket
    import zipfile

    (parent,) = top_level_runs(workspace)
    run_id = parent.info.run_id.encode()
    host = socket.gethostname().encode()
    for folder in ("data", "models", "reports", "plots"):
        for path in (workspace / folder).rglob("*"):
            if not path.is_file():
                continue
            assert run_id not in path.read_bytes(), path
            if path.suffix == ".keras":
                with zipfile.ZipFile(path) as archive:
                    texts = [archive.read(n) for n in ("config.json", "metadata.json")]
            elif path.suffix in {".json", ".csv"}:
                texts = [path.read_bytes()]
            else:
                # binary arrays and images: a short host name matches by chance
                continue
            assert not any(host in text for text in texts), path


def test_second_repro_reruns_nothing(workspace: Path) -> None:
    done = run(dvc("repro"), workspace)
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in done.stdout
    assert len(top_level_runs(workspace)) == 1


def test_forced_repro_gives_identical_outputs(workspace: Path) -> None:
    before = (workspace / "dvc.lock").read_bytes()
    run(dvc("repro", "--force"), workspace)
    assert (workspace / "dvc.lock").read_bytes() == before
    assert git(workspace, "status", "--porcelain", "--untracked-files=no") == ""


def test_model_param_change_reruns_only_model_stages(workspace: Path) -> None:
    run(python("-m", "pipeline.compose", *SHRUNK, "train.epochs=7"), workspace)
    done = run(dvc("repro"), workspace)
    assert "Stage 'generate' didn't change" in done.stdout
    assert "Stage 'split' didn't change" in done.stdout
    for stage in ("train", "crossval", "evaluate", "plot"):
        assert f"Running stage '{stage}'" in done.stdout

    newest = top_level_runs(workspace)[-1]
    children = children_of(workspace, newest.info.run_id)
    assert [child.info.run_name for child in children] == STAGES[2:]
    assert newest.data.params["train.epochs"] == "7"

    shown = run(dvc("metrics", "diff", "--json"), workspace).stdout
    assert "reports/train/metrics.json" in shown
