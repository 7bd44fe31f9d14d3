"""The MLflow model registry: log the model, register it, move the champion alias.

The model is logged with MLflow's TensorFlow flavor (Keras's native ``.keras``
format, loaded in safe mode), with a signature and an input example taken from the
data, and registered under ``mlflow.registered_model_name``. Each version is
tagged with its test metrics and the DVC hash of the data it was scored on.
The alias ``mlflow.champion_alias`` moves to the new version only when it
beats the current holder on ``mlflow.champion_metric``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.schema import MlflowConfig

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

# metrics where a smaller value is better; every other metric: larger is better
LOWER_IS_BETTER = ("loss", "brier")
INPUT_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class Registration:
    model_uri: str
    version: str
    champion: bool


def is_better(metric: str, new: float, old: float | None) -> bool:
    """Whether ``new`` beats ``old`` on ``metric`` (anything beats no value)."""
    if old is None:
        return True
    if metric.rsplit(".", 1)[-1] in LOWER_IS_BETTER:
        return new < old
    return new > old


def pip_requirements() -> list[str]:
    """Pinned requirements of the served model, without MLflow's slow inference."""
    from importlib.metadata import version

    return [
        f"{name}=={version(name)}"
        for name in ("mlflow", "tensorflow", "keras", "numpy", "pandas")
    ]


def log_and_register(
    run_id: str,
    model: keras.Model,
    X_example: np.ndarray,
    metrics: dict[str, float],
    tags: dict[str, str],
    config: MlflowConfig,
) -> Registration:
    """Log ``model`` on run ``run_id``, register it and maybe crown it champion.

    Args:
        run_id: The run the model is logged under.
        model: A model taking raw features and returning probabilities.
        X_example: A few rows of raw features for the input example.
        metrics: Test metrics, with dotted names such as ``test.roc_auc``.
        tags: Lineage tags for the version (data hash, git commit, ...).
        config: Registered model name, alias and the metric that decides it.
    """
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    # the Keras flavor takes tensor signatures; float64 so CSV input needs no cast
    example = np.ascontiguousarray(X_example[:INPUT_EXAMPLE_ROWS], dtype=np.float64)
    signature = infer_signature(example, model.predict(example, verbose=0))

    with mlflow.start_run(run_id=run_id):
        # the TensorFlow flavor saves Keras 3 models in the native .keras format;
        # MLflow's keras flavor fails to write an input example (its folder is
        # made only after the example is saved)
        info = mlflow.tensorflow.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
        )
    client = MlflowClient()
    name = config.registered_model_name
    version = mlflow.register_model(
        info.model_uri, name, tags={**tags, **_strings(metrics)}
    )
    logger.info("registered %s version %s", name, version.version)

    metric = config.champion_metric
    new = metrics.get(metric)
    champion = False
    if new is None:
        logger.warning(
            "metric %s not computed; alias %s left alone", metric, config.champion_alias
        )
    else:
        holder = _holder(client, name, config.champion_alias)
        old = None if holder is None else _float(holder.tags.get(metric))
        if is_better(metric, new, old):
            client.set_registered_model_alias(
                name, config.champion_alias, version.version
            )
            champion = True
            logger.info(
                "%s@%s is now version %s (%s %.4f, was %s)",
                name,
                config.champion_alias,
                version.version,
                metric,
                new,
                old,
            )
    return Registration(info.model_uri, str(version.version), champion)


def _holder(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _strings(values: dict[str, float]) -> dict[str, str]:
    return {key: repr(float(value)) for key, value in values.items()}
