"""Stage ``split``: a stratified, seeded train/test split.

Reads ``params.yaml`` (``seed``, ``split``) and ``paths.raw``. Writes
``X_train.npy``, ``y_train.npy``, ``X_test.npy`` and ``y_test.npy`` to
``paths.split``. The test split is held out: only ``evaluate`` reads it.

Run: ``python -m pipeline.split`` (DVC runs it as stage ``split``).
"""

from __future__ import annotations

import logging

import numpy as np

from pipeline import cli, paths, tracking
from pipeline.errors import ConfigError, DataError
from pipeline.io import load_arrays, save_arrays
from pipeline.schema import load_params

logger = logging.getLogger(__name__)

MIN_ROWS_PER_CLASS = 2


def split(
    X: np.ndarray, y: np.ndarray, *, test_size: float, random_state: int
) -> dict[str, np.ndarray]:
    """Split rows into train and test, keeping the class balance in both.

    Raises:
        ConfigError: ``test_size`` leaves a class with too few rows on a side.
    """
    from sklearn.model_selection import train_test_split

    if len(X) != len(y):
        raise DataError(
            f"features have {len(X)} rows but labels {len(y)}; rerun generate"
        )
    counts = np.bincount(y.astype(np.int64), minlength=2)
    n_test = int(np.ceil(test_size * len(y)))
    smallest = int(counts.min())
    if (
        min(round(smallest * test_size), smallest - round(smallest * test_size))
        < (MIN_ROWS_PER_CLASS)
        or n_test < 2 * MIN_ROWS_PER_CLASS
    ):
        raise ConfigError(
            f"split.test_size={test_size} leaves fewer than {MIN_ROWS_PER_CLASS} rows "
            f"of the smaller class ({smallest} rows) on one side; choose a test_size "
            "nearer 0.2 or use more data"
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}


@cli.entry_point
def main() -> None:
    params = load_params(paths.params_path())
    root = paths.work_root()
    with tracking.stage_run("split", params) as run:
        run.log_params({"seed": params.seed, "split": params.split.model_dump()})
        run.record_inputs(root, {params.paths.raw: "generate"}, context="source")
        raw = load_arrays(root / params.paths.raw, ["X", "y"])
        parts = split(
            raw["X"],
            raw["y"],
            test_size=params.split.test_size,
            random_state=params.seed,
        )
        save_arrays(root / params.paths.split, parts)

        sizes = {"n_train": len(parts["y_train"]), "n_test": len(parts["y_test"])}
        logger.info("split %(n_train)d train rows, %(n_test)d test rows", sizes)
        run.log_metrics(sizes)


if __name__ == "__main__":
    raise SystemExit(main())
