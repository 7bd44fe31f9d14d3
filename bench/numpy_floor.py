"""A pure-NumPy version of the reference training: the benchmark's floor.

It trains the same model as ``bench/reference.py`` on the same data, with the
forward and backward passes written by hand: standardize the features with the
statistics of the fit rows (like ``keras.layers.Normalization``), then Dense
20->128 ReLU, Dense 128->64 ReLU and Dense 64->1, trained with binary
cross-entropy on the logit and Keras's Adam, with mini-batches reshuffled every
epoch and a validation pass after each epoch. Nothing is spent on a framework,
so its fit time is the fastest this machine can train this model.

It prints one JSON line with its timings and accuracies, like the reference.

Run: ``python bench/numpy_floor.py [--rows N] [--epochs N] [--batch-size N]``.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

IMPORTED = time.perf_counter()

SEED = 42
HIDDEN = (128, 64)
NORM_EPSILON = 1e-7  # keras.backend.epsilon(): the floor on the feature std
LEARNING_RATE = 0.001
BETA_1 = 0.9
BETA_2 = 0.999
ADAM_EPSILON = 1e-7

F32 = np.float32


@dataclass
class Adam:
    """Adam in Keras's formulation, updating a list of parameters in place."""

    params: list[np.ndarray]
    learning_rate: float = LEARNING_RATE
    beta_1: float = BETA_1
    beta_2: float = BETA_2
    epsilon: float = ADAM_EPSILON
    step: int = 0
    m: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]

    def update(self, grads: list[np.ndarray]) -> None:
        """Apply one Adam step with ``grads`` (one per parameter, same order).

        Keras folds the bias corrections into the step size:
        ``alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)`` and
        ``p -= alpha * m / (sqrt(v) + epsilon)``.
        """
        self.step += 1
        t = self.step
        alpha = F32(
            self.learning_rate * np.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        )
        one_minus_b1 = F32(1.0 - self.beta_1)
        one_minus_b2 = F32(1.0 - self.beta_2)
        eps = F32(self.epsilon)
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m += (g - m) * one_minus_b1
            v += (g * g - v) * one_minus_b2
            p -= alpha * m / (np.sqrt(v) + eps)


@dataclass
class MLP:
    """A ReLU multilayer perceptron with one logit output, all float32.

    ``weights[i]`` has shape ``(fan_in, fan_out)`` and ``biases[i]`` shape
    ``(fan_out,)``. Inputs are expected already standardized.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @classmethod
    def glorot(cls, sizes: list[int], rng: np.random.Generator) -> MLP:
        """Glorot-uniform weights (``limit = sqrt(6 / (fan_in + fan_out))``),
        zero biases, like Keras's Dense defaults."""
        weights = []
        biases = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(F32)
            weights.append(w)
            biases.append(np.zeros(fan_out, dtype=F32))
        return cls(weights, biases)

    @property
    def params(self) -> list[np.ndarray]:
        """All parameters, in the order ``gradients`` returns them."""
        return [*self.weights, *self.biases]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Return the logits, shape ``(n,)``, and each layer's input.

        The layer inputs (``x`` and the hidden ReLU outputs) are what the
        backward pass needs.
        """
        inputs = [x]
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = h @ w
            z += b
            if i < last:
                np.maximum(z, 0, out=z)  # ReLU in place
                inputs.append(z)
            h = z
        return h[:, 0], inputs

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Return the logits for ``x``, shape ``(n,)``."""
        return self.forward(x)[0]

    def gradients(
        self, inputs: list[np.ndarray], dlogits: np.ndarray
    ) -> list[np.ndarray]:
        """Backpropagate ``dlogits`` (loss gradient w.r.t. the logits, ``(n,)``).

        Returns the gradients in the order of ``params``: all weights, then
        all biases.
        """
        n_layers = len(self.weights)
        grad_w: list[np.ndarray] = [np.empty(0, dtype=F32)] * n_layers
        grad_b: list[np.ndarray] = [np.empty(0, dtype=F32)] * n_layers
        delta = dlogits[:, None]
        for i in range(n_layers - 1, -1, -1):
            h = inputs[i]
            grad_w[i] = h.T @ delta
            grad_b[i] = delta.sum(axis=0)
            if i > 0:
                delta = delta @ self.weights[i].T
                delta *= h > 0  # ReLU derivative: h is the ReLU output
        return [*grad_w, *grad_b]


def bce_from_logits(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row binary cross-entropy of ``sigmoid(logits)`` against ``y``.

    Uses the stable form ``max(z, 0) - z * y + log1p(exp(-|z|))``, as
    ``tf.nn.sigmoid_cross_entropy_with_logits`` does.
    """
    return np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large ``|z|``."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Share of rows where ``sigmoid(logit) > 0.5`` matches the label."""
    return float(np.mean((logits > 0) == (y > 0.5)))


def evaluate(model: MLP, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Return the mean loss and the accuracy of ``model`` on ``(x, y)``."""
    logits = model.logits(x)
    return float(np.mean(bce_from_logits(logits, y))), accuracy(logits, y)


def standardizer(x_fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each feature over the fit rows, like Normalization.

    The variance is the population variance; the std is floored at
    ``NORM_EPSILON``.
    """
    mean = x_fit.mean(axis=0, dtype=np.float64).astype(F32)
    var = x_fit.var(axis=0, dtype=np.float64).astype(F32)
    std = np.maximum(np.sqrt(var), F32(NORM_EPSILON))
    return mean, std


def train_step(model: MLP, optimizer: Adam, x: np.ndarray, y: np.ndarray) -> float:
    """One Adam step on the batch ``(x, y)``; return the batch's mean loss."""
    logits, inputs = model.forward(x)
    loss = float(np.mean(bce_from_logits(logits, y)))
    dlogits = (sigmoid(logits) - y) / F32(len(y))
    optimizer.update(model.gradients(inputs, dlogits))
    return loss


def fit(
    model: MLP,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
) -> list[dict[str, float]]:
    """Train ``model`` on the fit rows, validating after each epoch.

    ``data`` is ``(x_fit, y_fit, x_val, y_val)``, already standardized. Each
    epoch the fit rows are reshuffled (one gather per epoch; the batches are
    then views). An epoch's ``loss`` is the mean of its batch losses weighted
    by batch size, as Keras reports it. Returns one history entry per epoch.
    """
    x_fit, y_fit, x_val, y_val = data
    optimizer = Adam(model.params)
    n = len(y_fit)
    history = []
    for _ in range(epochs):
        order = rng.permutation(n)
        x_epoch = x_fit[order]
        y_epoch = y_fit[order]
        total = 0.0
        for start in range(0, n, batch_size):
            xb = x_epoch[start : start + batch_size]
            yb = y_epoch[start : start + batch_size]
            total += train_step(model, optimizer, xb, yb) * len(yb)
        val_loss, val_accuracy = evaluate(model, x_val, y_val)
        history.append(
            {"loss": total / n, "val_loss": val_loss, "val_accuracy": val_accuracy}
        )
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    X, y = make_classification(
        n_samples=args.rows,
        n_features=20,
        n_informative=15,
        n_redundant=5,
        class_sep=1.0,
        flip_y=0.01,
        random_state=SEED,
    )
    X = X.astype(F32)
    y = y.astype(F32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=SEED
    )
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, test_size=0.2, stratify=y_train, random_state=SEED
    )

    # The normalization layer is fixed after adapt, so apply it once up front.
    mean, std = standardizer(X_fit)
    X_fit, X_val, X_test = ((a - mean) / std for a in (X_fit, X_val, X_test))

    rng = np.random.default_rng(SEED)
    model = MLP.glorot([X.shape[1], *HIDDEN, 1], rng)
    fit_start = time.perf_counter()
    history = fit(
        model, (X_fit, y_fit, X_val, y_val), args.epochs, args.batch_size, rng
    )
    fit_end = time.perf_counter()
    _, test_accuracy = evaluate(model, X_test, y_test)
    end = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": round(IMPORTED - START, 3),
                "fit_s": round(fit_end - fit_start, 3),
                "script_s": round(end - START, 3),
                "test_accuracy": round(test_accuracy, 4),
                "final_loss": round(history[-1]["loss"], 4),
                "final_val_accuracy": round(history[-1]["val_accuracy"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
