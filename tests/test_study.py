"""The overfitting study: the overfit experiment overfits, regularization helps.

Runs the real experiment configs through the stages' core functions in this
process (the same code `dvc repro` runs, without its process start-up).
"""

from __future__ import annotations

import pytest

from pipeline.compose import compose
from pipeline.evaluate import evaluate
from pipeline.generate import generate
from pipeline.model import predict_proba
from pipeline.split import split
from pipeline.train import train
from tests.conftest import REPO


def accuracy_report(experiment: str) -> dict:
    params = compose(REPO, [f"experiment={experiment}"])
    X, y, _ = generate(params.data, seed=params.seed)
    parts = split(X, y, test_size=params.split.test_size, random_state=params.seed)
    result = train(
        parts["X_train"],
        parts["y_train"],
        model_config=params.model,
        train_config=params.train,
        seed=params.seed,
    )
    report = evaluate(
        parts["y_train"],
        predict_proba(result.model, parts["X_train"]),
        parts["y_test"],
        predict_proba(result.model, parts["X_test"]),
        threshold=params.evaluate.threshold,
    )
    report["epochs_run"] = result.epochs_run
    return report


@pytest.fixture(scope="module")
def overfit() -> dict:
    return accuracy_report("overfit")


def test_overfit_experiment_overfits(overfit: dict) -> None:
    assert overfit["gap"]["accuracy"] >= 0.10
    assert overfit["epochs_run"] == 200


def test_regularized_experiment_halves_gap_without_losing_test_accuracy(
    overfit: dict,
) -> None:
    regularized = accuracy_report("regularized")
    assert regularized["gap"]["accuracy"] <= overfit["gap"]["accuracy"] / 2
    assert regularized["test"]["accuracy"] >= overfit["test"]["accuracy"]
    assert regularized["epochs_run"] < 200  # early stopping ended it
