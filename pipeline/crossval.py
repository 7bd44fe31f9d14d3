"""Stage ``crossval``: stratified k-fold cross-validation on the training split.

Each fold trains a fresh model with the same configuration as ``train`` on the
other folds and scores it on the held-out fold. The test split is never read.
Reads ``params.yaml`` (``seed``, ``model``, ``train``, ``evaluate``,
``runtime``) and the training split from ``paths.split``. Writes
``folds.csv`` (one row of metrics per fold) and ``metrics.json`` (mean and
standard deviation of each metric) to ``paths.crossval_reports``. With
``evaluate.cross_validation.enabled: false`` it writes an empty summary.

Run: ``python -m pipeline.crossval`` (DVC runs it as stage ``crossval``).
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import numpy as np

from pipeline import cli, paths, runtime, tracking
from pipeline.io import load_arrays, write_csv, write_json
from pipeline.metrics import SCORES, score
from pipeline.model import predict_proba
from pipeline.schema import ModelConfig, TrainConfig, load_params
from pipeline.train import train

logger = logging.getLogger(__name__)


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_splits: int,
    model_config: ModelConfig,
    train_config: TrainConfig,
    threshold: float,
    seed: int,
) -> list[dict[str, float]]:
    """Score a fresh model on each of ``n_splits`` stratified folds.

    Returns:
        One mapping of metric name to value per fold, in fold order.
    """
    import keras
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores = []
    for index, (fit_rows, held_rows) in enumerate(folds.split(X, y), start=1):
        result = train(
            X,
            y,
            rows=fit_rows,
            model_config=model_config,
            train_config=train_config,
            seed=seed + index,
        )
        fold = score(
            y[held_rows], predict_proba(result.model, X, held_rows), threshold=threshold
        )
        logger.info("fold %d/%d: accuracy %.4f", index, n_splits, fold["accuracy"])
        scores.append(fold)
        # free the fold's model and compiled functions before the next one
        del result
        keras.backend.clear_session()
        gc.collect()
    return scores


def summarize(folds: list[dict[str, float]]) -> dict[str, Any]:
    """Mean and standard deviation of each metric over the folds."""
    if not folds:
        return {"n_splits": 0}
    table = np.array([[fold[name] for name in SCORES] for fold in folds])
    return {
        "n_splits": len(folds),
        "mean": {
            name: round(float(v), 6)
            for name, v in zip(SCORES, table.mean(0), strict=True)
        },
        "std": {
            name: round(float(v), 6)
            for name, v in zip(SCORES, table.std(0), strict=True)
        },
    }


@cli.entry_point
def main() -> None:
    params = load_params(paths.params_path())
    settings = params.evaluate.cross_validation
    root = paths.work_root()
    if settings.enabled:
        runtime.configure(params.runtime, params.seed)
    with tracking.stage_run("crossval", params) as run:
        run.log_params({"evaluate.cross_validation": settings.model_dump()})
        folds: list[dict[str, float]] = []
        if settings.enabled:
            run.record_inputs(root, {params.paths.split: "split"}, context="training")
            data = load_arrays(root / params.paths.split, ["X_train", "y_train"])
            folds = cross_validate(
                data["X_train"],
                data["y_train"],
                n_splits=settings.n_splits,
                model_config=params.model,
                train_config=params.train,
                threshold=params.evaluate.threshold,
                seed=params.seed,
            )
        summary = summarize(folds)

        reports = root / params.paths.crossval_reports
        rows = [
            [index, *(fold[name] for name in SCORES)]
            for index, fold in enumerate(folds, 1)
        ]
        write_csv(reports / "folds.csv", ["fold", *SCORES], rows)
        write_json(reports / "metrics.json", summary)
        if folds:
            logger.info(
                "cross-validation accuracy %.4f +- %.4f over %d folds",
                summary["mean"]["accuracy"],
                summary["std"]["accuracy"],
                len(folds),
            )
            run.log_metrics(
                {
                    f"cv.{stat}.{k}": v
                    for stat in ("mean", "std")
                    for k, v in summary[stat].items()
                },
                on_parent=True,
            )
        run.log_artifact(reports)


if __name__ == "__main__":
    raise SystemExit(main())
