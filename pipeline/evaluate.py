"""Stage ``evaluate``: score the saved model on the train and test splits.

Reads ``params.yaml`` (``evaluate``, ``runtime``), the model from
``paths.model`` and both splits from ``paths.split``. Writes to
``paths.evaluate_reports``:

- ``metrics.json``: accuracy, precision, recall, F1, ROC AUC, average
  precision, log loss (``loss``) and Brier score on ``train`` and ``test``,
  their ``gap`` (train minus test) and the test confusion matrix;
- ``predictions.csv``, ``roc.csv``, ``precision_recall.csv`` and
  ``calibration.csv``: the test split's curves, for DVC plots.

Run: ``python -m pipeline.evaluate`` (DVC runs it as stage ``evaluate``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import cli, paths, runtime, tracking
from pipeline.io import load_arrays, write_csv, write_json
from pipeline.metrics import confusion, gaps, score
from pipeline.model import load_model, predict_proba, probability_model
from pipeline.registry import log_and_register
from pipeline.schema import load_params

logger = logging.getLogger(__name__)

CALIBRATION_BINS = 10


def evaluate(
    y_train: np.ndarray,
    p_train: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    *,
    threshold: float,
) -> dict[str, Any]:
    """Metrics on both splits, their gaps and the test confusion matrix."""
    train = score(y_train, p_train, threshold=threshold)
    test = score(y_test, p_test, threshold=threshold)
    return {
        "train": train,
        "test": test,
        "gap": gaps(train, test),
        "confusion": confusion(y_test, p_test, threshold=threshold),
    }


def curves(
    y_true: np.ndarray, y_prob: np.ndarray, *, threshold: float
) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The test split's curve data: header and rows for each CSV file."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y_true, y_prob)
    precision, recall, _ = precision_recall_curve(y_true, y_prob)
    fraction, predicted = calibration_curve(
        y_true, y_prob, n_bins=CALIBRATION_BINS, strategy="uniform"
    )
    y_pred = (y_prob >= threshold).astype(np.int64)

    def rounded(*columns: np.ndarray) -> list[list[float]]:
        return [[round(float(v), 6) for v in row] for row in zip(*columns, strict=True)]

    return {
        "roc.csv": (["fpr", "tpr"], rounded(fpr, tpr)),
        "precision_recall.csv": (["recall", "precision"], rounded(recall, precision)),
        "calibration.csv": (
            ["mean_predicted", "fraction_positive"],
            rounded(predicted, fraction),
        ),
        "predictions.csv": (
            ["actual", "predicted", "probability"],
            [
                [int(a), int(p), round(float(q), 6)]
                for a, p, q in zip(y_true, y_pred, y_prob, strict=True)
            ],
        ),
    }


def write_reports(folder: Path, report: dict[str, Any], curve_rows: dict) -> None:
    write_json(folder / "metrics.json", report)
    for name, (header, rows) in curve_rows.items():
        write_csv(folder / name, header, rows)


@cli.entry_point
def main() -> None:
    params = load_params(paths.params_path())
    runtime.configure(params.runtime, params.seed)
    root = paths.work_root()
    threshold = params.evaluate.threshold
    with tracking.stage_run("evaluate", params) as run:
        run.log_params({"evaluate.threshold": threshold})
        inputs = run.record_inputs(
            root,
            {params.paths.split: "split", params.paths.model: "train"},
            context="evaluation",
        )
        model = load_model(root / params.paths.model)
        data = load_arrays(
            root / params.paths.split, ["X_train", "y_train", "X_test", "y_test"]
        )
        p_train = predict_proba(model, data["X_train"])
        p_test = predict_proba(model, data["X_test"])

        report = evaluate(
            data["y_train"], p_train, data["y_test"], p_test, threshold=threshold
        )
        reports = root / params.paths.evaluate_reports
        write_reports(
            reports, report, curves(data["y_test"], p_test, threshold=threshold)
        )
        logger.info(
            "accuracy: train %.4f, test %.4f, gap %.4f",
            report["train"]["accuracy"],
            report["test"]["accuracy"],
            report["gap"]["accuracy"],
        )

        headline = {
            f"{split}.{name}": value
            for split in ("train", "test", "gap")
            for name, value in report[split].items()
        }
        run.log_metrics(headline, on_parent=True)
        run.log_metrics({f"confusion.{k}": v for k, v in report["confusion"].items()})
        run.log_artifact(reports)

        registration = log_and_register(
            run.run_id,
            probability_model(model),
            data["X_test"],
            {key: value for key, value in headline.items() if key.startswith("test.")},
            {
                "data.hash": inputs.get(params.paths.split, "unknown"),
                "model.hash": inputs.get(params.paths.model, "unknown"),
                **tracking.git_tags(root),
            },
            params.mlflow,
        )
        run.set_tags(
            {
                "model.uri": registration.model_uri,
                "model.registered": f"models:/{params.mlflow.registered_model_name}/"
                f"{registration.version}",
                "model.champion": str(registration.champion).lower(),
            },
            on_parent=True,
        )


if __name__ == "__main__":
    raise SystemExit(main())
