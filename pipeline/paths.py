"""Where the pipeline's files and the MLflow store live."""

from __future__ import annotations

import os
from pathlib import Path

PARAMS_FILE = "params.yaml"

# DVC runs queued and temporary experiments in a copy below this folder
_DVC_EXPERIMENT_COPIES = "/.dvc/tmp/exps/"


def work_root() -> Path:
    """The folder the stage works in: DVC runs each stage from its workspace,
    or from the experiment's temporary copy."""
    return Path.cwd().resolve()


def repository_root() -> Path:
    """The user's repository, also when DVC runs an experiment in a copy.

    DVC sets ``DVC_ROOT`` to the repository for every stage command, also for
    queued and temporary experiments. The MLflow store belongs here, so that
    runs from every experiment land in the one store the user opens.
    """
    root = os.environ.get("DVC_ROOT") or str(work_root())
    if _DVC_EXPERIMENT_COPIES in root + "/":
        root = root.split(_DVC_EXPERIMENT_COPIES, 1)[0]
    return Path(root).resolve()


def params_path() -> Path:
    return work_root() / PARAMS_FILE
