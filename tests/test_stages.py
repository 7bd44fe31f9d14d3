"""Unit tests of each stage's core function, without DVC or MLflow."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from pipeline.crossval import cross_validate, summarize
from pipeline.errors import ConfigError
from pipeline.evaluate import curves, evaluate
from pipeline.generate import generate
from pipeline.metrics import SCORES
from pipeline.model import build_model, load_model, predict_proba, save_model
from pipeline.plot import diagnostic_plots, learning_curves, save_png
from pipeline.schema import (
    BreastCancerData,
    ModelConfig,
    SyntheticData,
    TrainConfig,
)
from pipeline.split import split
from pipeline.train import class_weights, train
from pipeline.train import summarize as summarize_training

SMALL = SyntheticData(
    kind="synthetic",
    name="tiny",
    n_samples=200,
    n_features=6,
    n_informative=4,
    n_redundant=1,
)
MODEL = ModelConfig(name="tiny", hidden_units=[8])
TRAIN = TrainConfig(
    name="short", epochs=3, batch_size=16, learning_rate=0.01, validation_size=0.2
)


def test_generate_synthetic_is_seeded_float32() -> None:
    X, y, names = generate(SMALL, seed=1)
    X_again, y_again, _ = generate(SMALL, seed=1)
    assert X.shape == (200, 6) and X.dtype == np.float32
    assert set(np.unique(y)) == {0, 1} and y.dtype == np.int8
    assert names == [f"x{i}" for i in range(6)]
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    assert not np.array_equal(X, generate(SMALL, seed=2)[0])


def test_generate_breast_cancer_marks_malignant_positive() -> None:
    X, y, names = generate(BreastCancerData(kind="breast_cancer", name="bc"), seed=0)
    assert X.shape == (569, 30)
    assert int(y.sum()) == 212  # malignant cases in the Wisconsin data
    assert "mean radius" in names


def test_split_is_stratified_and_seeded() -> None:
    X, y, _ = generate(SMALL, seed=1)
    parts = split(X, y, test_size=0.25, random_state=3)
    assert len(parts["y_test"]) == 50 and len(parts["y_train"]) == 150
    assert abs(parts["y_test"].mean() - y.mean()) < 0.02
    again = split(X, y, test_size=0.25, random_state=3)
    np.testing.assert_array_equal(parts["X_test"], again["X_test"])


def test_split_rejects_test_size_leaving_too_few_rows() -> None:
    X, y, _ = generate(SMALL, seed=1)
    with pytest.raises(ConfigError, match=r"split\.test_size=0\.01"):
        split(X, y, test_size=0.01, random_state=0)


def test_train_returns_history_per_epoch() -> None:
    X, y, _ = generate(SMALL, seed=1)
    result = train(X, y, model_config=MODEL, train_config=TRAIN, seed=0)
    assert result.epochs_run == 3
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 3 for values in result.history.values())
    assert result.history["loss"][-1] < result.history["loss"][0]
    summary = summarize_training(result)
    assert summary["epochs_run"] == 3 and 1 <= summary["best_epoch"] <= 3


def test_train_is_repeatable_with_the_same_seed() -> None:
    X, y, _ = generate(SMALL, seed=1)
    first = train(X, y, model_config=MODEL, train_config=TRAIN, seed=5)
    second = train(X, y, model_config=MODEL, train_config=TRAIN, seed=5)
    assert first.history == second.history


def test_train_early_stopping_stops_and_reports_epoch() -> None:
    X, y, _ = generate(SMALL, seed=1)
    config = TRAIN.model_copy(
        update={
            "epochs": 200,
            "learning_rate": 0.05,
            "early_stopping": TRAIN.early_stopping.model_copy(
                update={"enabled": True, "patience": 2}
            ),
        }
    )
    result = train(X, y, model_config=MODEL, train_config=config, seed=0)
    assert result.stopped_early
    assert result.epochs_run < 200
    assert result.best_epoch <= result.epochs_run


def test_class_weights_balance_rare_class() -> None:
    y = np.array([0] * 90 + [1] * 10)
    weights = class_weights(y, "balanced")
    assert weights is not None and weights[1] == pytest.approx(9 * weights[0])
    assert class_weights(y, "none") is None


def test_model_takes_raw_features_scaling_inside(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(64, 3)) * [1000, 1, 0.001] + [5000, 0, 1]).astype(np.float32)
    model = build_model(X, MODEL, learning_rate=0.01)
    scaled = model.layers[0](X).numpy()
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-2)


def test_save_model_is_byte_identical_and_loads(tmp_path) -> None:
    X, y, _ = generate(SMALL, seed=1)
    model = train(X, y, model_config=MODEL, train_config=TRAIN, seed=0).model
    first, second = tmp_path / "a.keras", tmp_path / "b.keras"
    save_model(model, first)
    save_model(model, second)
    assert first.read_bytes() == second.read_bytes()
    loaded = load_model(first)
    np.testing.assert_allclose(
        predict_proba(loaded, X), predict_proba(model, X), atol=1e-6
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.keras", "b.keras"]


def test_evaluate_reports_every_metric_and_gap() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.6, 0.8, 0.9, 0.4, 0.2])
    report = evaluate(y, p, y, np.full(6, 0.5), threshold=0.5)
    assert set(report["train"]) == set(SCORES)
    assert report["train"]["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    assert report["test"]["accuracy"] == pytest.approx(0.5)
    assert report["gap"]["accuracy"] == pytest.approx(4 / 6 - 0.5, abs=1e-6)
    assert report["confusion"] == {"tn": 0, "fp": 3, "fn": 0, "tp": 3}


def test_curves_have_the_dvc_plot_columns() -> None:
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    p = np.linspace(0.05, 0.95, 8)
    tables = curves(y, p, threshold=0.5)
    assert tables["roc.csv"][0] == ["fpr", "tpr"]
    assert tables["predictions.csv"][0] == ["actual", "predicted", "probability"]
    assert len(tables["predictions.csv"][1]) == 8
    assert tables["roc.csv"][1][0] == [0.0, 0.0] and tables["roc.csv"][1][-1] == [
        1.0,
        1.0,
    ]


def test_cross_validate_trains_one_model_per_fold() -> None:
    X, y, _ = generate(SMALL, seed=1)
    folds = cross_validate(
        X, y, n_splits=3, model_config=MODEL, train_config=TRAIN, threshold=0.5, seed=0
    )
    assert len(folds) == 3
    summary = summarize(folds)
    assert summary["n_splits"] == 3
    accuracies = [fold["accuracy"] for fold in folds]
    assert summary["mean"]["accuracy"] == pytest.approx(np.mean(accuracies), abs=1e-6)
    assert summary["std"]["accuracy"] == pytest.approx(np.std(accuracies), abs=1e-6)


def test_plots_are_deterministic_png(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    history = {
        "epoch": np.arange(1, 6),
        "accuracy": np.linspace(0.6, 0.99, 5),
        "val_accuracy": np.linspace(0.6, 0.8, 5),
        "loss": np.linspace(0.7, 0.1, 5),
        "val_loss": np.linspace(0.7, 0.5, 5),
    }
    digests = []
    for attempt in range(2):
        path = tmp_path / f"curves{attempt}.png"
        save_png(learning_curves(history, best_epoch=3, stopped_epoch=5), path)
        digests.append(hashlib.md5(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert (tmp_path / "curves0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    y = np.array([0, 1] * 10)
    figures = diagnostic_plots(y, np.linspace(0, 1, 20), threshold=0.5)
    assert set(figures) == {
        "roc.png",
        "precision_recall.png",
        "confusion_matrix.png",
        "calibration.png",
    }
    buffer = io.BytesIO()
    figures["roc.png"].savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_renumber_shared_objects_keeps_sharing() -> None:
    from pipeline.model import _renumber_shared_objects

    config = {
        "dtype": {"shared_object_id": 140040774901072},
        "layers": [
            {"dtype": {"shared_object_id": 140040774901072}},
            {"dtype": {"shared_object_id": 99}},
        ],
    }
    assert _renumber_shared_objects(config) == {
        "dtype": {"shared_object_id": 1},
        "layers": [
            {"dtype": {"shared_object_id": 1}},
            {"dtype": {"shared_object_id": 2}},
        ],
    }
