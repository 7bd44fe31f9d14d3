"""Run the whole pipeline: compose ``params.yaml``, ``dvc repro``, show results.

    python -m pipeline.run                      # the defaults from conf/
    python -m pipeline.run model=l2 train.epochs=20

``make run`` and the MLproject's ``main`` entry point call this. Under
``mlflow run`` the run that MLflow created becomes the top-level run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

from pipeline import cli, paths, tracking
from pipeline.compose import compose_text
from pipeline.errors import PipelineError
from pipeline.io import atomic_path, read_json

logger = logging.getLogger(__name__)


def reproduce(root: Path, *, force: bool = False) -> None:
    """Run ``dvc repro`` in ``root`` with this interpreter's tools on PATH."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    command = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else [])]
    completed = subprocess.run(command, cwd=root, env=env, check=False)
    if completed.returncode != 0:
        raise PipelineError(
            f"`dvc repro` failed with exit code {completed.returncode}; "
            "see the stage's error above"
        )


def summary(root: Path) -> str:
    """Where the results are, with the headline figures."""
    from pipeline.schema import load_params

    params = load_params(root / paths.PARAMS_FILE)
    report = read_json(root / params.paths.evaluate_reports / "metrics.json")
    uri = tracking.redact(tracking.tracking_uri())
    lines = [
        "",
        f"test accuracy {report['test']['accuracy']:.4f}, train accuracy "
        f"{report['train']['accuracy']:.4f}, gap {report['gap']['accuracy']:+.4f}",
        f"metrics:  {params.paths.evaluate_reports}/metrics.json "
        "(all of them: `dvc metrics show`)",
        f"plots:    {params.paths.plots}/ (side by side: `dvc plots show`)",
        f"MLflow:   experiment {params.mlflow.experiment_name!r} in {uri}",
        "          open the UI with `make ui`, then http://127.0.0.1:5000",
    ]
    return "\n".join(lines)


@cli.entry_point
def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=l2")
    parser.add_argument("--force", action="store_true", help="rerun every stage")
    args = parser.parse_args()

    # `mlflow run -P overrides="a=1 b=2"` passes all overrides as one argument
    overrides = [part for argument in args.overrides for part in shlex.split(argument)]
    root = paths.work_root()
    text = compose_text(root, overrides)
    params_file = root / paths.PARAMS_FILE
    if not params_file.is_file() or params_file.read_text(encoding="utf-8") != text:
        with atomic_path(params_file) as tmp:
            tmp.write_text(text, encoding="utf-8")
        logger.info("composed %s from conf/ %s", params_file.name, " ".join(overrides))
    reproduce(root, force=args.force)
    print(summary(root))


if __name__ == "__main__":
    raise SystemExit(main())
