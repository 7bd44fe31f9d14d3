"""Check that the pipeline reproduces: rerun it from scratch and compare.

    python -m pipeline.verify              # or: make verify

Copies the repository's files (no DVC cache, no MLflow store) to a temporary
folder, runs ``dvc repro`` there, and compares every output's hash with the
one recorded in the committed ``dvc.lock``. Data outputs (``generate``,
``split``) must match exactly. Where the model or the reports differ, as they
may on another CPU or library build, each metric's difference is checked
against ``verify.metric_tolerance``. Exits 1 when a data output differs or a
metric is beyond tolerance, else 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline import cli, paths
from pipeline.errors import PipelineError
from pipeline.schema import flatten, load_params

logger = logging.getLogger(__name__)

DATA_STAGES = ("generate", "split")


@dataclass(frozen=True)
class OutputCheck:
    stage: str
    path: str
    expected: str | None
    got: str | None

    @property
    def match(self) -> bool:
        return self.expected == self.got


@dataclass(frozen=True)
class MetricCheck:
    name: str
    expected: float
    got: float | None
    tolerance: float

    @property
    def difference(self) -> float | None:
        return None if self.got is None else abs(self.got - self.expected)

    @property
    def within(self) -> bool:
        return self.difference is not None and self.difference <= self.tolerance


def output_hashes(lock: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    """``(stage, path) -> hash`` for every output in a parsed ``dvc.lock``."""
    return {
        (stage, out["path"]): out.get("md5")
        for stage, entry in (lock.get("stages") or {}).items()
        for out in entry.get("outs", [])
    }


def compare_outputs(expected: dict[str, Any], got: dict[str, Any]) -> list[OutputCheck]:
    """One check per output recorded in either lock file."""
    before, after = output_hashes(expected), output_hashes(got)
    keys = list(before) + [key for key in after if key not in before]
    return [
        OutputCheck(stage, path, before.get((stage, path)), after.get((stage, path)))
        for stage, path in keys
    ]


def compare_metrics(
    expected: dict[str, float], got: dict[str, float], tolerance: float
) -> list[MetricCheck]:
    return [
        MetricCheck(name, value, got.get(name), tolerance)
        for name, value in expected.items()
    ]


def verdict(outputs: list[OutputCheck], metrics: list[MetricCheck]) -> list[str]:
    """Why the reproduction fails; empty when it passes."""
    problems = [
        f"data output {check.path} of stage {check.stage} differs"
        for check in outputs
        if check.stage in DATA_STAGES and not check.match
    ]
    problems += [
        f"metric {check.name} differs by {check.difference:.3g} "
        f"(tolerance {check.tolerance})"
        if check.difference is not None
        else f"metric {check.name} is missing"
        for check in metrics
        if not check.within
    ]
    return problems


def numeric_metrics(
    root: Path, files: list[str], *, committed: bool
) -> dict[str, float]:
    """Every numeric value of the metrics files, keyed ``file:dotted.name``."""
    values: dict[str, float] = {}
    for name in files:
        text = _committed(root, name) if committed else _read(root / name)
        if text is None:
            continue
        for key, value in flatten(json.loads(text)).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[f"{name}:{key}"] = float(value)
    return values


def _committed(root: Path, name: str) -> str | None:
    """The file as committed at HEAD, or as it is when git cannot say."""
    try:
        return subprocess.run(
            ["git", "-C", str(root), "show", f"HEAD:{name}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return _read(root / name)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def reproduce_copy(root: Path, folder: Path) -> Path:
    """Copy the repository's own files to ``folder`` and run ``dvc repro`` there."""
    listing = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    copy = folder / "repo"
    for name in filter(None, listing.split("\0")):
        source = root / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("DVC_")
    }
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        [
            "git",
            "-c",
            "user.name=verify",
            "-c",
            "user.email=verify@localhost",
            "commit",
            "-q",
            "-m",
            "verify",
        ],
        [sys.executable, "-m", "dvc", "repro", "--force"],
    ):
        done = subprocess.run(
            command, cwd=copy, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise PipelineError(
                f"`{' '.join(command[-2:])}` failed in the copy: {' | '.join(tail)}"
            )
    return copy


def format_table(outputs: list[OutputCheck], metrics: list[MetricCheck]) -> str:
    rows = [["stage", "output", "expected", "got", "match"]]
    for check in outputs:
        rows.append(
            [
                check.stage,
                check.path,
                _short(check.expected),
                _short(check.got),
                "yes" if check.match else "NO",
            ]
        )
    lines = _columns(rows)
    differing = [check for check in metrics if check.difference != 0]
    if differing:
        lines += [
            "",
            *_columns(
                [["metric", "expected", "got", "difference", "within"]]
                + [
                    [
                        c.name,
                        f"{c.expected:.6g}",
                        "missing" if c.got is None else f"{c.got:.6g}",
                        "" if c.difference is None else f"{c.difference:.2e}",
                        "yes" if c.within else "NO",
                    ]
                    for c in differing
                ]
            ),
        ]
    else:
        lines += ["", f"all {len(metrics)} metrics equal"]
    return "\n".join(lines)


def _short(digest: str | None) -> str:
    return "missing" if digest is None else digest[:12]


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


@cli.entry_point
def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.verify", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args()

    root = paths.work_root()
    params = load_params(paths.params_path())
    committed_lock = _committed(root, "dvc.lock")
    if committed_lock is None:
        raise PipelineError(
            "dvc.lock: not found; run `dvc repro` and commit dvc.lock first"
        )
    metric_files = list(
        yaml.safe_load((root / "dvc.yaml").read_text()).get("metrics", [])
    )

    folder = Path(tempfile.mkdtemp(prefix="pipeline-verify-"))
    try:
        logger.info("reproducing the pipeline from scratch in %s", folder)
        copy = reproduce_copy(root, folder)
        got_lock = yaml.safe_load((copy / "dvc.lock").read_text(encoding="utf-8"))
        outputs = compare_outputs(yaml.safe_load(committed_lock), got_lock)
        metrics = compare_metrics(
            numeric_metrics(root, metric_files, committed=True),
            numeric_metrics(copy, metric_files, committed=False),
            params.verify.metric_tolerance,
        )
    finally:
        if args.keep:
            logger.info("kept the copy in %s", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    print(format_table(outputs, metrics))
    problems = verdict(outputs, metrics)
    if problems:
        raise PipelineError(
            f"not reproduced: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    matched = sum(check.match for check in outputs)
    print(
        f"\nreproduced: {matched} of {len(outputs)} outputs identical, "
        f"every metric within {params.verify.metric_tolerance}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
