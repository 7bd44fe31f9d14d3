"""Stage ``generate``: make or load the data set.

Reads ``params.yaml`` (``seed``, ``data``) and, for the ``csv`` option, the
user's CSV file. Writes ``X.npy`` (float32 features), ``y.npy`` (0/1 labels)
and ``features.json`` (column names) to ``paths.raw``.

Run: ``python -m pipeline.generate`` (DVC runs it as stage ``generate``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline import cli, paths, tracking
from pipeline.errors import ConfigError, DataError
from pipeline.io import save_arrays, write_json
from pipeline.schema import (
    BreastCancerData,
    CsvData,
    DataConfig,
    SyntheticData,
    load_params,
)

logger = logging.getLogger(__name__)

MIN_ROWS_PER_CLASS = 5


def generate(
    config: DataConfig, *, seed: int, root: Path | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Make or load the data set named by ``config``.

    Args:
        config: The ``data`` section of the parameters.
        seed: Seed for synthetic data.
        root: Folder that relative CSV paths are resolved against.

    Returns:
        Features (n_samples, n_features) as float32, labels (n_samples,) as
        int8 with 1 for the positive class, and the feature names.
    """
    if isinstance(config, SyntheticData):
        X, y = _synthetic(config, seed)
        names = [f"x{index}" for index in range(X.shape[1])]
    elif isinstance(config, BreastCancerData):
        from sklearn.datasets import load_breast_cancer

        bunch = load_breast_cancer()
        # scikit-learn codes malignant as 0; the diagnosis we look for is 1
        X, y, names = bunch.data, 1 - bunch.target, list(bunch.feature_names)
    else:
        X, y, names = read_csv(config, root or paths.work_root())
    return X.astype(np.float32), y.astype(np.int8), [str(name) for name in names]


def check_memory(config: SyntheticData, available: int | None = None) -> None:
    """Refuse, before any work, a data set that cannot fit in memory.

    scikit-learn builds float64 features, which are then copied to float32:
    about 12 bytes per value at the peak.

    Raises:
        ConfigError: The estimate exceeds 80 % of the memory available now.
    """
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    needed = config.n_samples * (config.n_features * 12 + 16)
    if needed > 0.8 * available:
        raise ConfigError(
            f"data.n_samples={config.n_samples} with data.n_features="
            f"{config.n_features} needs about {needed / 2**30:.1f} GiB, more than the "
            f"{0.8 * available / 2**30:.1f} GiB this machine can spare; lower "
            "data.n_samples"
        )


def _synthetic(config: SyntheticData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    check_memory(config)
    weights = [1.0 - config.positive_fraction, config.positive_fraction]
    return make_classification(
        n_samples=config.n_samples,
        n_features=config.n_features,
        n_informative=config.n_informative,
        n_redundant=config.n_redundant,
        class_sep=config.class_sep,
        flip_y=config.flip_y,
        weights=weights,
        random_state=seed,
    )


def read_csv(config: CsvData, root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read and validate the user's CSV file.

    Raises:
        DataError: One line naming the file, the column and what to do.
    """
    import pandas as pd

    path = Path(config.path)
    if not path.is_absolute():
        path = (root / path).resolve()
        if not path.is_relative_to(root.resolve()):
            raise DataError(
                f"data.path={config.path!r} points outside the repository; use a "
                "path inside it, or an absolute path"
            )
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(
            f"{path}: CSV file not found; set data.path to your file"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the file is empty; it needs a header and rows"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: not a readable CSV file ({_first_line(exc)})"
        ) from None

    if config.label_column not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise DataError(
            f"{path}: no label column {config.label_column!r} (columns: {columns}); "
            "set data.label_column"
        )
    if frame.empty:
        raise DataError(f"{path}: header only, no rows; add data rows")

    labels = _labels(frame[config.label_column], config, path)
    features = frame.drop(columns=[config.label_column])
    if features.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides {config.label_column!r}")
    for column in features.columns:
        values = pd.to_numeric(features[column], errors="coerce")
        bad = values.isna() & features[column].notna()
        if bad.any():
            row = int(bad.to_numpy().argmax()) + 2  # 1-based, after the header
            text = features[column][bad].iloc[0]
            raise DataError(
                f"{path}: column {column!r} holds text ({text!r} on line {row}); "
                "feature columns must be numeric"
            )
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax()) + 2
            raise DataError(
                f"{path}: column {column!r} has a missing value on line {row}; fill or "
                "drop such rows first"
            )
        if not np.isfinite(values.to_numpy(dtype=np.float64)).all():
            raise DataError(
                f"{path}: column {column!r} holds infinity; replace it with a "
                "finite value"
            )
        features[column] = values

    counts = np.bincount(labels, minlength=2)
    if counts.min() == 0:
        missing = int(counts.argmin())
        raise DataError(
            f"{path}: column {config.label_column!r} has no rows of class {missing}; "
            "both classes are needed"
        )
    if counts.min() < MIN_ROWS_PER_CLASS:
        raise DataError(
            f"{path}: column {config.label_column!r} has only {counts.min()} rows of "
            f"one class; at least {MIN_ROWS_PER_CLASS} per class are needed to split"
        )
    return features.to_numpy(dtype=np.float32), labels, list(features.columns)


def _labels(column, config: CsvData, path: Path) -> np.ndarray:  # type: ignore[no-untyped-def]
    name = config.label_column
    if column.isna().any():
        raise DataError(f"{path}: column {name!r} has missing labels; label every row")
    if config.positive_label is not None:
        mapping = {str(config.positive_label): 1, str(config.negative_label): 0}
        as_text = column.astype(str)
        unknown = sorted(set(as_text) - set(mapping))
        if unknown:
            raise DataError(
                f"{path}: column {name!r} holds {unknown[:5]} besides the configured "
                f"labels {config.positive_label!r} and {config.negative_label!r}"
            )
        return as_text.map(mapping).to_numpy(dtype=np.int64)
    values = sorted(set(column.tolist()), key=str)
    if not set(values) <= {0, 1}:
        raise DataError(
            f"{path}: column {name!r} holds {values[:5]}; labels must be 0 and 1, or "
            "set data.positive_label and data.negative_label"
        )
    return column.to_numpy(dtype=np.int64)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@cli.entry_point
def main() -> None:
    params = load_params(paths.params_path())
    with tracking.stage_run("generate", params) as run:
        run.log_params({"seed": params.seed, "data": params.data.model_dump()})
        X, y, names = generate(params.data, seed=params.seed)
        out = paths.work_root() / params.paths.raw
        save_arrays(out, {"X": X, "y": y})
        write_json(out / "features.json", names)

        positives = float(y.mean())
        logger.info(
            "generated %d rows, %d features, %.1f %% positive",
            len(y),
            X.shape[1],
            100 * positives,
        )
        run.log_metrics(
            {
                "n_samples": len(y),
                "n_features": X.shape[1],
                "positive_fraction": positives,
            }
        )
        run.log_artifact(out / "features.json")


if __name__ == "__main__":
    raise SystemExit(main())
