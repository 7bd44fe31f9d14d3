"""Process settings that change numerical results, applied before TensorFlow loads.

Thread counts, oneDNN and op determinism all change the order of floating-point
operations. They are set here, in one place, from the ``runtime`` section of
``params.yaml``, so a run is bitwise repeatable on the same machine kind.
"""

from __future__ import annotations

import logging
import os
import sys

from pipeline.schema import RuntimeConfig

logger = logging.getLogger(__name__)


def environment_for(runtime: RuntimeConfig) -> dict[str, str]:
    """Environment variables that must be set before TensorFlow is imported."""
    return {
        "KERAS_BACKEND": "tensorflow",
        "TF_ENABLE_ONEDNN_OPTS": "1" if runtime.onednn else "0",
        "TF_DETERMINISTIC_OPS": "1" if runtime.deterministic_ops else "0",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),
    }


def configure(runtime: RuntimeConfig, seed: int) -> None:
    """Apply thread, determinism and seed settings, then import TensorFlow.

    Args:
        runtime: The ``runtime`` section of the parameters.
        seed: The top-level seed; seeds Python, NumPy and TensorFlow.
    """
    if "tensorflow" in sys.modules:
        # environment switches are read once, at import: too late to apply them
        raise RuntimeError(
            "pipeline.runtime.configure must run before TensorFlow loads"
        )
    os.environ.update(environment_for(runtime))

    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(runtime.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(runtime.inter_op_threads)
    keras.utils.set_random_seed(seed)
    # no progress bars in logs, also from predict calls made inside MLflow
    keras.utils.disable_interactive_logging()
    if runtime.deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    logger.debug(
        "TensorFlow %s: intra_op_threads=%d inter_op_threads=%d onednn=%s seed=%d",
        tf.__version__,
        runtime.intra_op_threads,
        runtime.inter_op_threads,
        runtime.onednn,
        seed,
    )
