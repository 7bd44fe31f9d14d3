"""Run the overfitting study as DVC experiments and tabulate what they produced.

    python -m pipeline.study            # or: make study

Queues one DVC experiment per option in ``STUDY`` (named ``study-<option>``),
runs the queue two at a time, then writes the experiments' headline metrics,
read back from ``dvc exp show``, to ``reports/study.md`` and into the README
between the study markers, with the summary of the default run beside the
quick start. Every figure there comes from a real run.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import cli, paths
from pipeline.errors import PipelineError
from pipeline.io import write_bytes
from pipeline.run import summary

logger = logging.getLogger(__name__)

# the overfit setting, each regularization technique alone, then all together
STUDY = (
    "overfit",
    "overfit_l2",
    "overfit_dropout",
    "overfit_early_stopping",
    "regularized",
)
COLUMNS = (
    ("train.accuracy", "train accuracy"),
    ("test.accuracy", "test accuracy"),
    ("gap.accuracy", "gap (accuracy)"),
    ("gap.loss", "gap (log loss)"),
    ("test.roc_auc", "test ROC AUC"),
    ("mean.accuracy", "CV accuracy"),
    ("std.accuracy", "CV std"),
    ("epochs_run", "epochs"),
)
BEGIN, END = "<!-- study:begin -->", "<!-- study:end -->"
RUN_BEGIN, RUN_END = "<!-- run:begin -->", "<!-- run:end -->"


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()
        raise PipelineError(
            f"`dvc {' '.join(args)}` failed: {detail[-1] if detail else 'no output'}"
        )
    return completed


def run_experiments(root: Path, options: Sequence[str], *, jobs: int) -> None:
    """Queue one experiment per option of ``conf/experiment`` and run them."""
    for option in options:
        dvc(root, "exp", "remove", f"study-{option}", check=False)
        dvc(
            root,
            "exp",
            "run",
            "--queue",
            "-n",
            f"study-{option}",
            "-S",
            f"experiment={option}",
        )
    logger.info("running %d experiments, %d at a time", len(options), jobs)
    dvc(root, "exp", "run", "--run-all", "--jobs", str(jobs))

    status = dvc(root, "queue", "status").stdout
    failed = [
        option
        for option in options
        if re.search(rf"\bstudy-{re.escape(option)}\s.*\bFailed\b", status)
    ]
    if failed:
        raise PipelineError(
            f"experiments failed: {', '.join(f'study-{o}' for o in failed)}; see "
            f"`dvc queue logs study-{failed[0]}`"
        )


def collect(root: Path, options: Sequence[str]) -> list[dict[str, Any]]:
    """The headline metrics of each study experiment, from ``dvc exp show``."""
    import dvc.api

    rows = {row.get("Experiment"): row for row in dvc.api.exp_show(repo=str(root))}
    table = []
    for option in options:
        row = rows.get(f"study-{option}")
        if row is None:
            raise PipelineError(
                f"experiment study-{option} is missing from `dvc exp show`"
            )
        table.append(
            {"experiment": option, **{key: _value(row, key) for key, _ in COLUMNS}}
        )
    return table


def _value(row: dict[str, Any], key: str) -> Any:
    # `dvc exp show` prefixes a metric with its file when two files share the name
    for name, value in row.items():
        if name == key or name.endswith(f":{key}"):
            return value
    return None


def to_markdown(table: list[dict[str, Any]]) -> str:
    header = ["experiment", *(title for _, title in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        cells = [f"`{row['experiment']}`"]
        for key, _ in COLUMNS:
            value = row[key]
            if isinstance(value, float) and key != "epochs_run":
                cells.append(
                    f"{value:+.3f}" if key.startswith("gap") else f"{value:.3f}"
                )
            else:
                cells.append("" if value is None else f"{value:g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, begin: str, end: str, content: str) -> str:
    """``text`` with what stands between the ``begin`` and ``end`` markers replaced."""
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise PipelineError(f"README.md: no {begin} ... {end} markers to write between")
    return pattern.sub(lambda _: f"{begin}\n{content}{end}", text)


def update_readme(readme: Path, table: str, run_summary: str) -> None:
    """Write the study table and the default run's summary into the README."""
    text = readme.read_text(encoding="utf-8")
    text = replace_block(text, BEGIN, END, table)
    text = replace_block(text, RUN_BEGIN, RUN_END, f"```\n{run_summary.strip()}\n```\n")
    write_bytes(readme, text.encode("utf-8"))


@cli.entry_point
def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.study", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--jobs", type=int, default=2, help="experiments at a time")
    parser.add_argument(
        "--collect-only", action="store_true", help="tabulate without running"
    )
    args = parser.parse_args()

    root = paths.work_root()
    if not args.collect_only:
        run_experiments(root, STUDY, jobs=args.jobs)
    table = to_markdown(collect(root, STUDY))
    write_bytes(root / "reports" / "study.md", table.encode("utf-8"))
    # the summary `make run` prints for the committed defaults, paths made relative
    run_summary = summary(root).replace(f"{root}/", "")
    update_readme(root / "README.md", table, run_summary)
    print(table)


if __name__ == "__main__":
    raise SystemExit(main())
