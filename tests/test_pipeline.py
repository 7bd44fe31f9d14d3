"""End to end: the real `dvc repro` on a shrunk config in a temporary copy,
logging to a real `mlflow server` on the loopback address.

The tests in this module share one copy of the repository and run in file
order: the first reproduces the pipeline, later ones rerun it.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import (
    SHRUNK,
    MlflowServer,
    copy_repository,
    dvc,
    git,
    python,
    run,
)

STAGES = ["generate", "split", "train", "crossval", "evaluate", "plot"]
PLOTS = [
    "calibration.png",
    "confusion_matrix.png",
    "cross_validation.png",
    "learning_curves.png",
    "precision_recall.png",
    "roc.png",
]
EXPERIMENT = "end-to-end"
CONFIG = (*SHRUNK, f"mlflow.experiment_name={EXPERIMENT}")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(mlflow_server: MlflowServer) -> str:
    return mlflow_server.uri


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, server: str) -> Path:
    root = copy_repository(tmp_path_factory.mktemp("pipeline") / "repo")
    run(python("-m", "pipeline.compose", *CONFIG), root)
    git(root, "commit", "-q", "-am", "shrunk config")
    done = run(dvc("repro"), root, MLFLOW_TRACKING_URI=server)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in done.stdout
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "reproduced")
    return root


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def top_level_runs(uri: str) -> list:
    client = client_for(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def children_of(uri: str, parent_id: str) -> list:
    client = client_for(uri)
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        order_by=["start_time ASC"],
    )


def rest(uri: str, endpoint: str, payload: dict) -> dict:
    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


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
    assert not (workspace / "mlflow.db").exists()


def test_another_machine_pulls_and_reproduces_bitwise(
    workspace: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    run(dvc("remote", "add", "--default", "storage", str(remote)), workspace)
    git(workspace, "commit", "-q", "-am", "a local-folder remote")
    run(dvc("push", "--run-cache"), workspace)

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(workspace), str(clone))
    run(dvc("pull", "--run-cache"), clone)
    assert run(dvc("status"), clone).stdout.strip().endswith("up to date.")
    done = run(dvc("repro"), clone)
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in done.stdout

    # the clone logs to its own embedded store: a machine of its own
    run(dvc("repro", "--force"), clone)
    assert (clone / "dvc.lock").read_bytes() == (workspace / "dvc.lock").read_bytes()
    assert git(clone, "status", "--porcelain", "--untracked-files=no") == ""


def test_server_holds_one_top_level_run_with_a_child_per_stage(
    workspace: Path, server: str
) -> None:
    found = rest(server, "experiments/search", {"max_results": 100})
    ids = [e["experiment_id"] for e in found["experiments"] if e["name"] == EXPERIMENT]
    runs = rest(server, "runs/search", {"experiment_ids": ids, "max_results": 100})[
        "runs"
    ]
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    assert sum("mlflow.parentRunId" not in t for t in tags) == 1
    assert sorted(t["pipeline.stage"] for t in tags if "pipeline.stage" in t) == sorted(
        STAGES
    )

    client = client_for(server)
    (parent,) = top_level_runs(server)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["model.hidden_units"] == "[16, 8]"
    assert parent.data.params["train.epochs"] == "6"
    assert parent.data.params["seed"] == "42"
    assert 0.5 < parent.data.metrics["test.accuracy"] <= 1
    for key in ("gap.accuracy", "cv.mean.accuracy", "test.roc_auc", "gap.loss"):
        assert key in parent.data.metrics
    assert len(client.get_metric_history(parent.info.run_id, "val_accuracy")) == 6
    assert parent.data.tags["git.dirty"] == "false"
    assert len(parent.data.tags["mlflow.source.git.commit"]) == 40
    for key in (
        "env.tensorflow",
        "env.keras",
        "env.numpy",
        "env.scikit-learn",
        "env.mlflow",
        "env.dvc",
        "env.hydra-core",
        "env.python",
        "env.cpu",
        "env.cpu_flags",
        "env.intra_op_threads",
        "env.TF_ENABLE_ONEDNN_OPTS",
    ):
        assert key in parent.data.tags, key
    assert parent.data.tags["model.registered"].startswith(
        "models:/overfit-classifier/"
    )
    parent_plots = client.list_artifacts(parent.info.run_id, "plots")
    assert sorted(Path(a.path).name for a in parent_plots) == PLOTS

    children = children_of(server, parent.info.run_id)
    assert [child.info.run_name for child in children] == STAGES
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["pipeline.stage"] == child.info.run_name

    by_stage = {child.info.run_name: child for child in children}
    assert by_stage["generate"].data.params["data.n_samples"] == "240"
    assert by_stage["split"].data.metrics["n_test"] == 48
    assert by_stage["train"].data.metrics["epochs_run"] == 6
    reports = client.list_artifacts(by_stage["evaluate"].info.run_id)
    assert "metrics.json" in {Path(a.path).name for a in reports}


def test_runs_record_their_data_by_dvc_hash(workspace: Path, server: str) -> None:
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    split_hash = lock["stages"]["split"]["outs"][0]["md5"]
    model_hash = lock["stages"]["train"]["outs"][0]["md5"]
    (parent,) = top_level_runs(server)
    train = next(
        c for c in children_of(server, parent.info.run_id) if c.info.run_name == "train"
    )
    (dataset,) = train.inputs.dataset_inputs
    assert dataset.dataset.digest == split_hash
    assert dataset.dataset.name == "data/split"
    assert train.data.tags["dvc.input.data/split"] == split_hash

    client = client_for(server)
    version = client.get_model_version_by_alias("overfit-classifier", "champion")
    assert version.tags["data.hash"] == split_hash
    assert version.tags["model.hash"] == model_hash
    assert float(version.tags["test.accuracy"]) == pytest.approx(
        parent.data.metrics["test.accuracy"]
    )


def test_registered_champion_serves_predictions_from_raw_rows(
    workspace: Path, server: str, tmp_path: Path
) -> None:
    X = np.load(workspace / "data/split/X_test.npy")[:5]
    rows = tmp_path / "rows.csv"
    header = ",".join(json.loads((workspace / "data/raw/features.json").read_text()))
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in X)
    rows.write_text(f"{header}\n{body}\n")
    done = run(
        [
            "mlflow",
            "models",
            "predict",
            "-m",
            "models:/overfit-classifier@champion",
            "-i",
            str(rows),
            "-t",
            "csv",
            "--env-manager",
            "local",
        ],
        tmp_path,
        MLFLOW_TRACKING_URI=server,
    )
    predicted = json.loads(done.stdout.strip().splitlines()[-1])["predictions"]
    expected = [
        float(line.split(",")[2])
        for line in (workspace / "reports/evaluate/predictions.csv")
        .read_text()
        .splitlines()[1:6]
    ]
    assert [round(p[0], 5) for p in predicted] == pytest.approx(expected, abs=2e-5)


def test_outputs_hold_no_run_ids_or_host_names(workspace: Path, server: str) -> None:
    import socket
    import zipfile

    (parent,) = top_level_runs(server)
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


def test_second_repro_reruns_nothing(workspace: Path, server: str) -> None:
    done = run(dvc("repro"), workspace, MLFLOW_TRACKING_URI=server)
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in done.stdout
    assert len(top_level_runs(server)) == 1


def test_mlflow_run_reruns_only_model_stages_under_its_run(
    workspace: Path, server: str
) -> None:
    overrides = " ".join((*CONFIG, "train.epochs=7", "evaluate.threshold=0.4"))
    done = run(
        [
            "mlflow",
            "run",
            ".",
            "-P",
            f"overrides={overrides}",
            "--env-manager",
            "local",
            "--experiment-name",
            EXPERIMENT,
        ],
        workspace,
        MLFLOW_TRACKING_URI=server,
    )
    output = done.stdout + done.stderr
    assert "Stage 'generate' didn't change" in output
    assert "Stage 'split' didn't change" in output
    for stage in ("train", "crossval", "evaluate", "plot"):
        assert f"Running stage '{stage}'" in output

    newest = top_level_runs(server)[-1]
    assert newest.info.status == "FINISHED"
    # MLflow records the parameter as it quoted it for the shell
    assert newest.data.params["overrides"].strip("'") == overrides
    assert newest.data.params["train.epochs"] == "7"
    assert newest.data.params["evaluate.threshold"] == "0.4"
    children = children_of(server, newest.info.run_id)
    assert [child.info.run_name for child in children] == STAGES[2:]

    shown = run(dvc("metrics", "diff", "--json"), workspace).stdout
    assert "reports/train/metrics.json" in shown


def test_champion_alias_holds_the_best_version(workspace: Path, server: str) -> None:
    client = client_for(server)
    versions = client.search_model_versions("name='overfit-classifier'")
    assert len(versions) >= 2
    best = max(versions, key=lambda v: float(v.tags["test.roc_auc"]))
    champion = client.get_model_version_by_alias("overfit-classifier", "champion")
    assert float(champion.tags["test.roc_auc"]) == float(best.tags["test.roc_auc"])


def test_compare_prints_differing_params_and_overlays_curves(
    workspace: Path, server: str
) -> None:
    done = run(
        python("-m", "pipeline.compare", "--last", "2", "--output", "compare.png"),
        workspace,
        MLFLOW_TRACKING_URI=server,
    )
    header, rule, *rows = done.stdout.strip().split("\n\n")[0].splitlines()
    assert "train.epochs" in header and "test.accuracy" in header
    assert "seed" not in header  # the same in both runs
    assert len(rows) == 2
    assert (workspace / "compare.png").read_bytes()[:4] == b"\x89PNG"
