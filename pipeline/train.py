"""Stage ``train``: fit the Keras classifier on the training split.

Reads ``params.yaml`` (``seed``, ``model``, ``train``, ``runtime``) and the
training split from ``paths.split``. Validation data is a seeded, stratified
slice of the training split, never the test split. Writes the model to
``paths.model`` and, to ``paths.train_reports``, ``history.csv`` (loss and
accuracy per epoch, train and validation) and ``metrics.json``.

Run: ``python -m pipeline.train`` (DVC runs it as stage ``train``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline import cli, paths, runtime, tracking
from pipeline.io import load_arrays, write_csv, write_json
from pipeline.model import build_model, save_model
from pipeline.schema import ModelConfig, TrainConfig, load_params

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class TrainResult:
    """A trained model, its per-epoch history and where training ended."""

    model: keras.Model
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    stopped_early: bool


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    """Weights inversely proportional to class frequency, or ``None``."""
    if mode == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    return {0: float(weights[0]), 1: float(weights[1])}


def train(
    X: np.ndarray,
    y: np.ndarray,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    seed: int,
) -> TrainResult:
    """Fit a fresh model on ``X``, ``y``, validating on a seeded slice of them.

    Args:
        X: Training features, shape (n_samples, n_features).
        y: Training labels, 0 or 1.
        model_config: Architecture and regularization.
        train_config: Epochs, batch size, learning rate, early stopping.
        seed: Seed of the validation slice and of the weights.

    Returns:
        The model (with the best weights when early stopping restores them)
        and its history.
    """
    import keras
    from sklearn.model_selection import train_test_split

    X_fit, X_val, y_fit, y_val = train_test_split(
        X, y, test_size=train_config.validation_size, stratify=y, random_state=seed
    )
    keras.utils.set_random_seed(seed)
    model = build_model(
        X_fit,
        model_config,
        learning_rate=train_config.learning_rate,
        steps_per_execution=train_config.steps_per_execution,
    )

    callbacks = []
    stopping = train_config.early_stopping
    early_stop = None
    if stopping.enabled:
        early_stop = keras.callbacks.EarlyStopping(
            monitor=stopping.monitor,
            mode="min" if stopping.monitor == "val_loss" else "max",
            patience=stopping.patience,
            restore_best_weights=stopping.restore_best_weights,
        )
        callbacks.append(early_stop)

    fitted = model.fit(
        X_fit.astype(np.float32),
        y_fit.astype(np.float32),
        validation_data=(X_val.astype(np.float32), y_val.astype(np.float32)),
        epochs=train_config.epochs,
        batch_size=train_config.batch_size,
        class_weight=class_weights(y_fit, train_config.class_weight),
        callbacks=callbacks,
        shuffle=True,
        verbose=0,
    )
    history = {key: [float(v) for v in fitted.history[key]] for key in HISTORY_KEYS}
    monitored = history[stopping.monitor]
    pick = np.argmin if stopping.monitor == "val_loss" else np.argmax
    return TrainResult(
        model=model,
        history=history,
        epochs_run=len(history["loss"]),
        best_epoch=int(pick(monitored)) + 1,
        stopped_early=bool(early_stop is not None and early_stop.stopped_epoch > 0),
    )


def summarize(result: TrainResult) -> dict[str, float | int]:
    """The metrics of a training run: where it stopped and its last values."""
    summary: dict[str, float | int] = {
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": int(result.stopped_early),
    }
    for key in HISTORY_KEYS:
        summary[f"final_{key}"] = round(result.history[key][-1], 6)
    return summary


@cli.entry_point
def main() -> None:
    params = load_params(paths.params_path())
    runtime.configure(params.runtime, params.seed)
    root = paths.work_root()
    with tracking.stage_run("train", params) as run:
        run.log_params(
            {
                "seed": params.seed,
                "model": params.model.model_dump(),
                "train": params.train.model_dump(),
                "runtime": params.runtime.model_dump(),
            }
        )
        run.record_inputs(root, {params.paths.split: "split"}, context="training")
        data = load_arrays(root / params.paths.split, ["X_train", "y_train"])
        logger.info(
            "training %s on %d rows for up to %d epochs",
            params.model.name,
            len(data["y_train"]),
            params.train.epochs,
        )
        result = train(
            data["X_train"],
            data["y_train"],
            model_config=params.model,
            train_config=params.train,
            seed=params.seed,
        )

        reports = root / params.paths.train_reports
        rows = [
            [epoch, *(round(result.history[key][epoch - 1], 6) for key in HISTORY_KEYS)]
            for epoch in range(1, result.epochs_run + 1)
        ]
        write_csv(reports / "history.csv", ["epoch", *HISTORY_KEYS], rows)
        summary = summarize(result)
        write_json(reports / "metrics.json", summary)
        save_model(result.model, root / params.paths.model)
        logger.info(
            "trained %d epochs (best %d): train accuracy %.4f, validation %.4f",
            result.epochs_run,
            result.best_epoch,
            result.history["accuracy"][-1],
            result.history["val_accuracy"][-1],
        )

        run.log_history(result.history, on_parent=True)
        run.log_metrics(summary)
        run.log_artifact(reports)


if __name__ == "__main__":
    raise SystemExit(main())
