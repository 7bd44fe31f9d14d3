"""Load: a queued sweep of eight experiments, run two at a time by DVC, logging
to one SQLite store and, separately, to a real `mlflow server`.

Every experiment must succeed with one top-level run and FINISHED stage runs,
every metric in its commit must reach the store with the same value, and the
store's database must pass SQLite's integrity check.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    SHRUNK,
    MlflowServer,
    copy_repository,
    dvc,
    git,
    python,
    run,
    tool_env,
)

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

# a grid of eight: every experiment trains a different model, so none of them
# is restored from DVC's run cache
MODELS = ("baseline", "l2", "dropout", "l2_dropout")
LEARNING_RATES = (0.01, 0.02)
GRID = sorted((model, rate) for model in MODELS for rate in LEARNING_RATES)
# SHRUNK without its learning rate, which the grid sets, and without
# cross-validation, as test_experiments sweeps
SWEEP = (
    *(item for item in SHRUNK if not item.startswith("train.learning_rate=")),
    "evaluate.cross_validation.enabled=false",
)
EPOCHS = 6
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
# generate and split may come from DVC's run cache: then they log nothing
STAGES = {"train", "crossval", "evaluate", "plot"}
CACHED_STAGES = {"generate", "split"}
# the session server is shared: its own experiment and registered model
SERVER_NAME = "load-test-server"
QUEUE_TIMEOUT = 1800


@dataclass(frozen=True)
class Sweep:
    """A finished sweep: the repository copy and the store it logged to."""

    root: Path
    tracking_uri: str
    database: Path
    experiment_name: str
    registered_model_name: str
    queue_status: str
    seconds: float


def start_queue(root: Path, log: Path, **extra: str) -> None:
    """`dvc queue start -j 2`, returning as soon as the workers are spawned.

    The workers inherit the command's output: with pipes, as `run` captures,
    the command would only return when the workers exit.
    """
    with log.open("w") as out:
        completed = subprocess.run(
            dvc("queue", "start", "-j", "2"),
            cwd=root,
            env=tool_env(**extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    assert completed.returncode == 0, log.read_text()


def wait_for_queue(root: Path, timeout: float = QUEUE_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run(dvc("queue", "status"), root).stdout
        if "Running" not in status and "Queued" not in status:
            return status
        time.sleep(5)
    raise AssertionError(f"queue still busy after {timeout} s:\n{status}")


def stop_workers(root: Path) -> None:
    """Stop the queue's workers and wait for them to exit.

    A worker stops by itself once the queue is empty, unless its idle monitor
    died on a half-written message of kombu's filesystem broker, as it does
    now and then: https://github.com/treeverse/dvc/issues/10428
    """
    import psutil

    run(dvc("queue", "stop"), root, check=False)
    workers = []
    for pid_file in (root / ".dvc" / "tmp" / "exps" / "celery").glob("*.pid"):
        try:
            workers.append(psutil.Process(int(pid_file.read_text())))
        except (ValueError, psutil.NoSuchProcess):
            continue
    _, alive = psutil.wait_procs(workers, timeout=60)
    for worker in alive:
        worker.kill()


def sweep(root: Path, *overrides: str, **extra: str) -> tuple[str, float]:
    """Queue the grid on top of ``overrides``, run it; the queue's status, time."""
    config = (*SWEEP, *overrides)
    run(python("-m", "pipeline.compose", *config), root)
    git(root, "commit", "-q", "-am", "shrunk config")
    sets = [arg for override in config for arg in ("-S", override)]
    grid = (
        "-S",
        f"model={','.join(MODELS)}",
        "-S",
        f"train.learning_rate={','.join(map(str, LEARNING_RATES))}",
    )
    started = time.monotonic()
    run(dvc("exp", "run", "--queue", *grid, *sets), root, **extra)
    try:
        start_queue(root, root.parent / "queue-start.log", **extra)
        status = wait_for_queue(root)
    finally:
        stop_workers(root)
    return status, time.monotonic() - started


def sweep_sqlite(folder: Path) -> Sweep:
    """The grid, logged to the copy's own SQLite store."""
    root = copy_repository(folder / "repo")
    status, seconds = sweep(root)
    logger.info("sweep against SQLite took %.0f s", seconds)
    return Sweep(
        root,
        f"sqlite:///{root / 'mlflow.db'}",
        root / "mlflow.db",
        "overfitting-study",
        "overfit-classifier",
        status,
        seconds,
    )


def sweep_server(folder: Path, server: MlflowServer) -> Sweep:
    """The grid, logged to a real `mlflow server` (own experiment and model)."""
    root = copy_repository(folder / "repo")
    status, seconds = sweep(
        root,
        f"mlflow.experiment_name={SERVER_NAME}",
        f"mlflow.registered_model_name={SERVER_NAME}",
        MLFLOW_TRACKING_URI=server.uri,
    )
    logger.info("sweep against the server took %.0f s", seconds)
    return Sweep(
        root,
        server.uri,
        server.folder / "mlflow.db",
        SERVER_NAME,
        SERVER_NAME,
        status,
        seconds,
    )


# tests/test_load_server.py runs the same tests against a server; two files let
# the test runner's two workers run both sweeps at once
@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    return sweep_sqlite(tmp_path_factory.mktemp("load-sqlite"))


def experiments(root: Path) -> list[dict[str, Any]]:
    """The rows of `dvc exp show` for the sweep's experiments."""
    import dvc.api

    return [row for row in dvc.api.exp_show(repo=str(root)) if row["typ"] != "baseline"]


def experiment_commits(root: Path) -> dict[str, str]:
    """Each experiment's name and commit, from DVC's git refs."""
    listing = git(
        root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps"
    )
    return {
        ref.rsplit("/", 1)[1]: commit
        for commit, ref in (line.split() for line in listing.splitlines())
    }


def read_at(root: Path, commit: str, path: str) -> str:
    return git(root, "show", f"{commit}:{path}")


def runs_of(swept: Sweep) -> tuple[Any, list, dict[str, list]]:
    """The client, the top-level runs and each top-level run's children."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=swept.tracking_uri)
    experiment = client.get_experiment_by_name(swept.experiment_name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children: dict[str, list] = {parent.info.run_id: [] for parent in parents}
    for child in runs:
        parent_id = child.data.tags.get("mlflow.parentRunId")
        if parent_id is not None:
            assert parent_id in children, f"orphan run {child.info.run_id}"
            children[parent_id].append(child)
    return client, parents, children


def test_queue_runs_every_experiment_successfully(swept: Sweep) -> None:
    lines = swept.queue_status.splitlines()
    successes = sum(" Success " in f"{line} " for line in lines)
    assert successes == len(GRID), swept.queue_status
    assert "Failed" not in swept.queue_status

    rows = experiments(swept.root)
    assert len({row["Experiment"] for row in rows}) == len(rows)
    options = sorted((row["model.name"], row["train.learning_rate"]) for row in rows)
    assert options == GRID
    for row in rows:
        assert row["State"] == "Success"
        assert row["train.epochs"] == EPOCHS
        assert 0 < row["test.accuracy"] <= 1


def test_stages_log_only_to_the_chosen_store(swept: Sweep) -> None:
    stores = sorted(swept.root.rglob("mlflow.db"))
    if swept.database.is_relative_to(swept.root):
        assert stores == [swept.database]
    else:
        # the queue's workers inherited MLFLOW_TRACKING_URI from `dvc queue start`
        assert stores == []
        assert not (swept.root / "mlartifacts").exists()


def test_store_holds_one_finished_run_per_experiment(swept: Sweep) -> None:
    rows = {row["Experiment"]: row for row in experiments(swept.root)}
    _, parents, children = runs_of(swept)

    assert sorted(parent.info.run_name for parent in parents) == sorted(rows)
    executions = {parent.data.tags["pipeline.execution"] for parent in parents}
    assert len(executions) == len(GRID)
    for parent in parents:
        row = rows[parent.info.run_name]
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["dvc.experiment"] == parent.info.run_name
        assert parent.data.params["model.name"] == row["model.name"]
        rate = float(parent.data.params["train.learning_rate"])
        assert rate == row["train.learning_rate"]

        names = [child.info.run_name for child in children[parent.info.run_id]]
        assert len(names) == len(set(names)), names
        assert STAGES <= set(names) <= STAGES | CACHED_STAGES
        for child in children[parent.info.run_id]:
            assert child.info.status == "FINISHED"
            assert child.data.tags["pipeline.stage"] == child.info.run_name
            assert child.data.tags["dvc.experiment"] == parent.info.run_name

    stages = [child.info.run_name for runs in children.values() for child in runs]
    assert set(stages) >= CACHED_STAGES


def test_store_registers_one_model_version_per_experiment(swept: Sweep) -> None:
    client, parents, children = runs_of(swept)

    versions = client.search_model_versions(f"name='{swept.registered_model_name}'")
    evaluations = {
        child.info.run_id
        for runs in children.values()
        for child in runs
        if child.info.run_name == "evaluate"
    }
    assert sorted(version.run_id for version in versions) == sorted(evaluations)
    assert len({version.version for version in versions}) == len(GRID)
    registered = {parent.data.tags["model.registered"] for parent in parents}
    assert registered == {
        f"models:/{swept.registered_model_name}/{version.version}"
        for version in versions
    }


def test_every_metric_of_every_experiment_reaches_the_store(swept: Sweep) -> None:
    commits = experiment_commits(swept.root)
    client, parents, children = runs_of(swept)

    assert sorted(commits) == sorted(parent.info.run_name for parent in parents)
    for parent in parents:
        commit = commits[parent.info.run_name]
        stage_runs = {c.info.run_name: c for c in children[parent.info.run_id]}
        evaluation = json.loads(
            read_at(swept.root, commit, "reports/evaluate/metrics.json")
        )
        training = json.loads(read_at(swept.root, commit, "reports/train/metrics.json"))
        history = list(
            csv.DictReader(
                io.StringIO(read_at(swept.root, commit, "reports/train/history.csv"))
            )
        )

        # the headline metrics: on the evaluate run and on the top-level run
        headline = {
            f"{split}.{name}": value
            for split in ("train", "test", "gap")
            for name, value in evaluation[split].items()
        }
        for run_ in (parent, stage_runs["evaluate"]):
            logged = run_.data.metrics
            assert {key: logged.get(key) for key in headline} == headline
        confusion = {f"confusion.{k}": v for k, v in evaluation["confusion"].items()}
        logged = stage_runs["evaluate"].data.metrics
        assert {key: logged.get(key) for key in confusion} == confusion

        # the training summary: on the train run
        logged = stage_runs["train"].data.metrics
        assert {key: logged.get(key) for key in training} == training
        assert training["epochs_run"] == EPOCHS

        # the learning curves, a step per epoch: on the train and top-level runs
        assert len(history) == EPOCHS
        for run_id in (parent.info.run_id, stage_runs["train"].info.run_id):
            for key in HISTORY_KEYS:
                steps = sorted(
                    client.get_metric_history(run_id, key), key=lambda m: m.step
                )
                assert [m.step for m in steps] == list(range(1, EPOCHS + 1)), key
                assert [m.value for m in steps] == pytest.approx(
                    [float(row[key]) for row in history], abs=1e-6
                ), key


def test_store_database_passes_integrity_check(swept: Sweep) -> None:
    connection = sqlite3.connect(f"file:{swept.database}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


def test_plots_diff_renders_two_experiments(swept: Sweep) -> None:
    names = sorted(row["Experiment"] for row in experiments(swept.root))[:2]
    out = swept.root.parent / "diff"
    run(dvc("plots", "diff", *names, "-o", str(out)), swept.root)
    page = (out / "index.html").read_text()
    for name in names:
        assert name in page
    assert "Accuracy per epoch" in page
