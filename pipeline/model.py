"""The Keras classifier, shared by training and cross-validation.

The model takes raw features: a ``Normalization`` layer, set to the column
means and variances of the rows it is fitted on (never the test split),
scales them inside the model, so evaluation and serving
need no separate preprocessing. It ends in one unit that emits logits; the
loss applies the sigmoid itself (``from_logits=True``).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import DataError
from pipeline.io import write_bytes
from pipeline.schema import ModelConfig

if TYPE_CHECKING:
    import keras

# a fixed timestamp for every entry of a saved model archive, for equal bytes
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_model(
    X_train: np.ndarray,
    config: ModelConfig,
    *,
    learning_rate: float,
    steps_per_execution: int = 1,
    rows: np.ndarray | None = None,
) -> keras.Model:
    """Build and compile the classifier, its scaling set from ``X_train``.

    Args:
        X_train: Training features, shape (n_samples, n_features).
        rows: The rows of ``X_train`` the model is fitted on (all when ``None``).
        config: Hidden layer widths, activation, L2 strength and dropout rate.
        learning_rate: Adam's learning rate.
        steps_per_execution: Batches run per call into the compiled graph.

    Returns:
        A compiled model emitting one logit per row.
    """
    import keras

    mean, variance = column_moments(X_train, rows)
    normalizer = keras.layers.Normalization(
        mean=mean, variance=variance, name="scaling"
    )
    regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None

    layers: list[keras.layers.Layer] = [keras.Input((X_train.shape[1],)), normalizer]
    for index, units in enumerate(config.hidden_units, start=1):
        layers.append(
            keras.layers.Dense(
                units,
                activation=config.activation,
                kernel_regularizer=regularizer,
                name=f"hidden_{index}",
            )
        )
        if config.dropout > 0:
            layers.append(keras.layers.Dropout(config.dropout, name=f"dropout_{index}"))
    layers.append(keras.layers.Dense(1, name="logit"))

    model = keras.Sequential(layers, name="classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)],
        steps_per_execution=steps_per_execution,
    )
    return model


def column_moments(
    X: np.ndarray, rows: np.ndarray | None = None, block_rows: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each column over ``rows`` (all when ``None``), in
    float64, a block of rows at a time.

    The same numbers as ``Normalization.adapt``, without its copy of the data:
    blocks are combined with the pairwise update of Chan, Golub and LeVeque.
    """
    count = 0
    mean = np.zeros(X.shape[1])
    squares = np.zeros(X.shape[1])  # sum of squared deviations from the mean
    total_rows = len(X) if rows is None else len(rows)
    for start in range(0, total_rows, block_rows):
        if rows is None:
            block = X[start : start + block_rows].astype(np.float64)
        else:
            block = X[rows[start : start + block_rows]].astype(np.float64)
        size = len(block)
        block_mean = block.mean(axis=0)
        block_squares = ((block - block_mean) ** 2).sum(axis=0)
        delta = block_mean - mean
        total = count + size
        mean = mean + delta * size / total
        squares = squares + block_squares + delta**2 * count * size / total
        count = total
    return mean, squares / max(count, 1)


def save_model(model: keras.Model, path: Path) -> None:
    """Save in Keras's native format with the archive's timestamps fixed.

    Keras stamps the save time into ``metadata.json`` and the zip entries; both
    are replaced by constants so that the same weights give the same bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".save-", dir=path.parent) as folder:
        raw = Path(folder) / "model.keras"
        model.save(raw)
        archive = raw.read_bytes()

    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(archive)) as source,
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in sorted(source.infolist(), key=lambda item: item.filename):
            content = source.read(entry)
            if entry.filename == "metadata.json":
                metadata = json.loads(content)
                metadata["date_saved"] = "1980-01-01@00:00:00"
                content = json.dumps(metadata, sort_keys=True).encode()
            elif entry.filename == "config.json":
                content = json.dumps(
                    _renumber_shared_objects(json.loads(content))
                ).encode()
            info = zipfile.ZipInfo(entry.filename, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, content)
    write_bytes(path, buffer.getvalue())


def _renumber_shared_objects(config: Any) -> Any:
    """Replace the memory addresses Keras uses as ``shared_object_id`` by 1, 2, ...

    Keras writes ``id()`` of objects that layers share (dtype policies, say),
    which differs from process to process; numbering them in order of first
    appearance keeps which objects are shared and makes the file repeatable.
    """
    numbers: dict[int, int] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: numbers.setdefault(value, len(numbers) + 1)
                if key == "shared_object_id"
                else walk(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(config)


def load_model(path: Path) -> keras.Model:
    """Load a model saved by :func:`save_model`, in Keras's safe mode.

    Raises:
        DataError: The file is missing or not a Keras model archive.
    """
    import keras

    if not path.is_file():
        raise DataError(f"{path}: model not found; run `dvc repro` to train it")
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not a Keras model archive (.keras); run `dvc repro -f train` "
            "to retrain it"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise DataError(
            f"{path}: cannot load the model ({type(exc).__name__}); run "
            "`dvc repro -f train` to retrain it"
        ) from None


def probability_model(model: keras.Model) -> keras.Model:
    """Wrap the logit model so that it returns the positive class's probability.

    This is the model logged to MLflow for serving: raw features in,
    probabilities out.
    """
    import keras

    inputs = keras.Input(model.input_shape[1:], name="features")
    outputs = keras.layers.Activation("sigmoid", name="probability")(model(inputs))
    return keras.Model(inputs, outputs, name="classifier_probability")


def predict_proba(
    model: keras.Model,
    X: np.ndarray,
    rows: np.ndarray | None = None,
    block_rows: int = 8192,
) -> np.ndarray:
    """Probability of the positive class for each row of ``X`` (or of ``rows``).

    The model is called directly on blocks of rows: no input pipeline to build
    and no copy of ``X``, so memory stays at one block however large ``X`` is.
    """
    count = len(X) if rows is None else len(rows)
    logits = np.empty(count, dtype=np.float64)
    for start in range(0, count, block_rows):
        stop = min(start + block_rows, count)
        block = X[start:stop] if rows is None else X[rows[start:stop]]
        output = model(np.asarray(block, dtype=np.float32), training=False)
        logits[start:stop] = np.asarray(output, dtype=np.float64).reshape(-1)
    return 1.0 / (1.0 + np.exp(-logits))
