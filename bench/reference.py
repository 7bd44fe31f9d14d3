"""A plain Keras script: the baseline that the pipeline is measured against.

It does what a user would write instead of the pipeline: make the default data,
hold out a test split, fit the default architecture for 50 epochs with batch
size 32 and validation after each epoch (``model.fit`` with its default
settings), and score the test split. It prints one JSON line with its timings
and test accuracy; ``bench/run.py`` reads it.

Run: ``python bench/reference.py [--rows N]``.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

IMPORTED = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    seed = 42
    keras.utils.set_random_seed(seed)
    X, y = make_classification(
        n_samples=args.rows,
        n_features=20,
        n_informative=15,
        n_redundant=5,
        class_sep=1.0,
        flip_y=0.01,
        random_state=seed,
    )
    X = X.astype("float32")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=seed
    )
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, test_size=0.2, stratify=y_train, random_state=seed
    )

    normalizer = keras.layers.Normalization()
    normalizer.adapt(X_fit)
    model = keras.Sequential(
        [
            keras.Input((X.shape[1],)),
            normalizer,
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.001),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    fit_start = time.perf_counter()
    model.fit(
        X_fit,
        y_fit,
        validation_data=(X_val, y_val),
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=0,
    )
    fit_end = time.perf_counter()
    _, test_accuracy = model.evaluate(X_test, y_test, verbose=0)
    end = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": round(IMPORTED - START, 3),
                "fit_s": round(fit_end - fit_start, 3),
                "script_s": round(end - START, 3),
                "test_accuracy": round(float(test_accuracy), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
