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
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline import cli, paths, runtime, tracking
from pipeline.io import aligned, load_arrays, write_csv, write_json
from pipeline.model import build_model, save_model
from pipeline.schema import ModelConfig, TrainConfig, load_params

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

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
    fit_seconds: float


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    """Weights inversely proportional to class frequency, or ``None``."""
    if mode == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    return {0: float(weights[0]), 1: float(weights[1])}


def steps_per_call(steps_per_epoch: int, wanted: int) -> int:
    """The most batches per call into the compiled graph, at most ``wanted``,
    that divide an epoch evenly.

    Keras runs a fixed number of batches per call; on an endless (repeated)
    dataset a count that does not divide the epoch would carry batches over
    into the next epoch.
    """
    return max(
        count
        for count in range(1, min(wanted, steps_per_epoch) + 1)
        if steps_per_epoch % count == 0
    )


def _batches(
    X: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of the rows ``rows`` of ``X``, ``y``, as a dataset that is cheap
    to iterate again.

    With ``shuffle_seed`` (training) ``X`` is shared with TensorFlow, and the
    dataset gathers batches of row numbers from a fresh permutation of ``rows``
    each epoch (a stateless shuffle of the seed and the epoch's number), so
    memory stays at one copy of the data; it repeats without end, so one
    iterator serves all epochs. Without (validation) it is the rows in order,
    once. tf.data's graph rewrites, which it runs whenever an iterator is made
    (once per epoch for the validation batches), cost more than they save here.
    """
    import tensorflow as tf

    if shuffle_seed is None:
        dataset = tf.data.Dataset.from_tensor_slices(
            (X[rows].astype(np.float32), y[rows].astype(np.float32))
        ).batch(batch_size)
    else:
        # DLPack hands NumPy's buffers to TensorFlow without a copy
        features = tf.experimental.dlpack.from_dlpack(
            aligned(X, np.float32).__dlpack__()
        )
        labels = tf.experimental.dlpack.from_dlpack(aligned(y, np.float32).__dlpack__())
        chosen = tf.constant(rows, dtype=tf.int64)

        def epoch(number: tf.Tensor) -> tf.data.Dataset:
            order = tf.random.experimental.stateless_shuffle(
                chosen, seed=tf.stack([tf.constant(shuffle_seed, tf.int64), number])
            )
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

        dataset = tf.data.Dataset.counter().flat_map(epoch)
        dataset = dataset.map(
            lambda batch: (tf.gather(features, batch), tf.gather(labels, batch))
        )
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    return dataset.with_options(options)


def train(
    X: np.ndarray,
    y: np.ndarray,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    seed: int,
    rows: np.ndarray | None = None,
) -> TrainResult:
    """Fit a fresh model on ``X``, ``y``, validating on a seeded slice of them.

    Args:
        X: Training features, shape (n_samples, n_features).
        y: Training labels, 0 or 1.
        rows: The rows to use (all when ``None``): cross-validation passes a
            fold's row numbers rather than a copy of its rows.
        model_config: Architecture and regularization.
        train_config: Epochs, batch size, learning rate, early stopping.
        seed: Seed of the validation slice and of the weights.

    Returns:
        The model (with the best weights when early stopping restores them)
        and its history.
    """
    import keras
    from sklearn.model_selection import train_test_split

    chosen = np.arange(len(y)) if rows is None else np.asarray(rows)
    fit_rows, val_rows = train_test_split(
        chosen,
        test_size=train_config.validation_size,
        stratify=y[chosen],
        random_state=seed,
    )
    keras.utils.set_random_seed(seed)
    steps_per_epoch = math.ceil(len(fit_rows) / train_config.batch_size)
    model = build_model(
        X,
        model_config,
        rows=fit_rows,
        learning_rate=train_config.learning_rate,
        steps_per_execution=steps_per_call(
            steps_per_epoch, train_config.steps_per_execution
        ),
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

    started = time.perf_counter()
    fitted = model.fit(
        _batches(X, y, fit_rows, train_config.batch_size, shuffle_seed=seed),
        validation_data=_batches(X, y, val_rows, train_config.batch_size),
        epochs=train_config.epochs,
        steps_per_epoch=steps_per_epoch,
        class_weight=class_weights(y[fit_rows], train_config.class_weight),
        callbacks=callbacks,
        shuffle=False,  # the training batches reshuffle themselves
        verbose=0,
    )
    fit_seconds = time.perf_counter() - started
    history = {key: [float(v) for v in fitted.history[key]] for key in HISTORY_KEYS}
    monitored = history[stopping.monitor]
    pick = np.argmin if stopping.monitor == "val_loss" else np.argmax
    return TrainResult(
        model=model,
        history=history,
        epochs_run=len(history["loss"]),
        best_epoch=int(pick(monitored)) + 1,
        stopped_early=bool(early_stop is not None and early_stop.stopped_epoch > 0),
        fit_seconds=fit_seconds,
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
            "trained %d epochs (best %d) in %.2f s: train accuracy %.4f, "
            "validation %.4f",
            result.epochs_run,
            result.best_epoch,
            result.fit_seconds,
            result.history["accuracy"][-1],
            result.history["val_accuracy"][-1],
        )

        run.log_history(result.history, on_parent=True)
        # wall time varies from run to run: MLflow keeps it, metrics.json does not
        run.log_metrics({**summary, "fit_seconds": round(result.fit_seconds, 3)})
        run.log_artifact(reports)


if __name__ == "__main__":
    raise SystemExit(main())
