"""The shell around every stage: logging, signals, one-line errors, exit codes."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from pipeline.errors import Interrupted, PipelineError

DEBUG_ENV = "PIPELINE_DEBUG"


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted("stopped by SIGTERM; rerun `dvc repro` to finish")


def configure_logging() -> None:
    level = logging.DEBUG if os.environ.get(DEBUG_ENV) else logging.INFO
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("alembic", "mlflow", "absl", "h5py", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # a refused connection is retried and reported once, as the stage's error
    logging.getLogger("urllib3").setLevel(max(level, logging.ERROR))
    # Keras warns about retracing when each fold builds a fresh model
    logging.getLogger("tensorflow").setLevel(max(level, logging.ERROR))


def entry_point(func: Callable[[], None]) -> Callable[[], int]:
    """Wrap a stage's ``main``: user errors become one line and an exit code.

    Exit codes: 2 for configuration errors, 1 for other user errors, 130 on
    SIGINT, 143 on SIGTERM. Set ``PIPELINE_DEBUG=1`` to see tracebacks.
    """

    @functools.wraps(func)
    def wrapper() -> int:
        configure_logging()
        signal.signal(signal.SIGTERM, _raise_interrupted)
        try:
            func()
        except PipelineError as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("error: interrupted; rerun `dvc repro` to finish", file=sys.stderr)
            return 130
        return 0

    return wrapper
