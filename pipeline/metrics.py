"""Classification metrics, named the same in metrics files, MLflow and plots."""

from __future__ import annotations

import numpy as np

SCORES = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "average_precision",
    "loss",
    "brier",
)


def score(
    y_true: np.ndarray, y_prob: np.ndarray, *, threshold: float
) -> dict[str, float]:
    """Score predicted probabilities against 0/1 labels.

    Args:
        y_true: True labels, shape (n_samples,).
        y_prob: Probability of class 1, shape (n_samples,).
        threshold: Probability at or above which a row is predicted 1.

    Returns:
        The metrics in :data:`SCORES` (``loss`` is the log loss), rounded to
        6 decimals so the metrics files read the same across runs.
    """
    from sklearn import metrics

    y_pred = (y_prob >= threshold).astype(np.int64)
    values = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "precision": metrics.precision_score(y_true, y_pred, zero_division=0.0),
        "recall": metrics.recall_score(y_true, y_pred, zero_division=0.0),
        "f1": metrics.f1_score(y_true, y_pred, zero_division=0.0),
        "roc_auc": metrics.roc_auc_score(y_true, y_prob),
        "average_precision": metrics.average_precision_score(y_true, y_prob),
        "loss": metrics.log_loss(y_true, y_prob, labels=[0, 1]),
        "brier": metrics.brier_score_loss(y_true, y_prob),
    }
    return {name: round(float(value), 6) for name, value in values.items()}


def confusion(
    y_true: np.ndarray, y_prob: np.ndarray, *, threshold: float
) -> dict[str, int]:
    """Counts of true/false positives/negatives at ``threshold``."""
    from sklearn.metrics import confusion_matrix

    y_pred = (y_prob >= threshold).astype(np.int64)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def gaps(train: dict[str, float], test: dict[str, float]) -> dict[str, float]:
    """Train minus test for every metric: the generalization gap."""
    return {name: round(train[name] - test[name], 6) for name in train}
