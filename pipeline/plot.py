"""Stage ``plot``: learning curves and the test split's diagnostic plots as PNG.

Reads ``history.csv`` and ``metrics.json`` from ``paths.train_reports``,
``predictions.csv`` from ``paths.evaluate_reports`` and, when cross-validation
ran, ``folds.csv`` from ``paths.crossval_reports``. Writes to ``paths.plots``:
``learning_curves.png``, ``roc.png``, ``precision_recall.png``,
``confusion_matrix.png``, ``calibration.png`` and ``cross_validation.png``.

Run: ``python -m pipeline.plot`` (DVC runs it as stage ``plot``).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline import cli, paths, tracking
from pipeline.errors import DataError
from pipeline.io import read_json, write_bytes
from pipeline.schema import load_params

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

FIGSIZE = (6.4, 4.8)
DPI = 100


def read_columns(path: Path) -> dict[str, np.ndarray]:
    """Read a numeric CSV written by an earlier stage into named columns."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        header, body = rows[0], rows[1:]
        table = np.array(body, dtype=np.float64).reshape(len(body), len(header))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro` to rebuild it") from None
    except (IndexError, ValueError):
        raise DataError(
            f"{path}: not a complete CSV table (truncated or corrupted); run "
            "`dvc repro -f` to rebuild it"
        ) from None
    return {name: table[:, index] for index, name in enumerate(header)}


def learning_curves(
    history: dict[str, np.ndarray], *, best_epoch: int | None, stopped_epoch: int | None
) -> Figure:
    """Accuracy and loss per epoch, train against validation.

    Args:
        history: Columns ``epoch``, ``accuracy``, ``val_accuracy``, ``loss``
            and ``val_loss``.
        best_epoch: The epoch of the best validation score, marked if given.
        stopped_epoch: The epoch early stopping ended training, marked if given.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(history["epoch"], history[metric], label="train")
        ax.plot(history["epoch"], history[f"val_{metric}"], label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label="best epoch")
        if stopped_epoch is not None:
            ax.axvline(stopped_epoch, color="red", linestyle=":", label="early stop")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: train vs validation")
        ax.grid(alpha=0.3)
        ax.legend()
    return figure


def _display(draw: Callable[..., object], title: str) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = figure.subplots()
    draw(ax)
    ax.set_title(title)
    return figure


def diagnostic_plots(
    y_true: np.ndarray, y_prob: np.ndarray, *, threshold: float
) -> dict[str, Figure]:
    """ROC, precision-recall, confusion matrix and calibration of the test split."""
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        PrecisionRecallDisplay,
        RocCurveDisplay,
    )

    y_pred = (y_prob >= threshold).astype(np.int64)
    return {
        "roc.png": _display(
            lambda ax: RocCurveDisplay.from_predictions(
                y_true, y_prob, ax=ax, plot_chance_level=True, name="test"
            ),
            "ROC curve (test split)",
        ),
        "precision_recall.png": _display(
            lambda ax: PrecisionRecallDisplay.from_predictions(
                y_true, y_prob, ax=ax, plot_chance_level=True, name="test"
            ),
            "Precision-recall curve (test split)",
        ),
        "confusion_matrix.png": _display(
            lambda ax: ConfusionMatrixDisplay.from_predictions(
                y_true, y_pred, ax=ax, colorbar=False
            ),
            f"Confusion matrix (test split, threshold {threshold})",
        ),
        "calibration.png": _display(
            lambda ax: CalibrationDisplay.from_predictions(
                y_true, y_prob, n_bins=10, ax=ax, name="test"
            ),
            "Calibration (test split)",
        ),
    }


def cross_validation_spread(folds: dict[str, np.ndarray]) -> Figure:
    """Each metric's spread over the folds of cross-validation."""
    from matplotlib.figure import Figure

    names = [name for name in folds if name != "fold"]
    figure = Figure(
        figsize=(max(6.4, 1.1 * len(names)), 4.8), dpi=DPI, layout="constrained"
    )
    ax = figure.subplots()
    ax.boxplot([folds[name] for name in names], tick_labels=names)
    ax.set_title(f"Cross-validation: {len(folds['fold'])} folds")
    ax.set_ylabel("score")
    ax.tick_params(axis="x", labelrotation=30)
    ax.grid(alpha=0.3)
    return figure


def save_png(figure: Figure, path: Path) -> None:
    """Save ``figure`` atomically, with no timestamp or version inside."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    write_bytes(path, buffer.getvalue())


@cli.entry_point
def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    params = load_params(paths.params_path())
    root = paths.work_root()
    with tracking.stage_run("plot", params) as run:
        train_reports = root / params.paths.train_reports
        history = read_columns(train_reports / "history.csv")
        summary = read_json(train_reports / "metrics.json")
        predictions = read_columns(
            root / params.paths.evaluate_reports / "predictions.csv"
        )

        figures = {
            "learning_curves.png": learning_curves(
                history,
                best_epoch=summary["best_epoch"],
                stopped_epoch=summary["epochs_run"]
                if summary["stopped_early"]
                else None,
            ),
            **diagnostic_plots(
                predictions["actual"].astype(np.int64),
                predictions["probability"],
                threshold=params.evaluate.threshold,
            ),
        }
        folds_file = root / params.paths.crossval_reports / "folds.csv"
        if params.evaluate.cross_validation.enabled and folds_file.is_file():
            figures["cross_validation.png"] = cross_validation_spread(
                read_columns(folds_file)
            )

        out = root / params.paths.plots
        for name, figure in figures.items():
            save_png(figure, out / name)
        logger.info("wrote %d plots to %s", len(figures), out)
        run.log_artifact(out, "plots", on_parent=True)
        run.set_tags({"plots": ",".join(sorted(figures))})


if __name__ == "__main__":
    raise SystemExit(main())
