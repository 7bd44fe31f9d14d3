"""Compare the top-level runs of the MLflow experiment side by side.

    python -m pipeline.compare              # or: make compare
    python -m pipeline.compare --last 4 --output plots/compare.png

Prints a table of the experiment's latest top-level runs (the params that
differ between them and the headline metrics) and writes a PNG with their
learning curves overlaid, read from the runs' step metrics.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import cli, paths, tracking
from pipeline.errors import PipelineError
from pipeline.schema import load_params

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

HEADLINE = (
    "test.accuracy",
    "gap.accuracy",
    "test.roc_auc",
    "test.loss",
    "cv.mean.accuracy",
)
IGNORED_PARAMS = ("paths.", "mlflow.")


def differing_params(runs: Sequence[Any]) -> list[str]:
    """Param keys whose values are not the same in every run."""
    keys = sorted({key for run in runs for key in run.data.params})
    return [
        key
        for key in keys
        if not key.startswith(IGNORED_PARAMS)
        and len({run.data.params.get(key) for run in runs}) > 1
    ]


def table(runs: Sequence[Any]) -> str:
    """A plain-text table: one row per run, differing params then metrics."""
    params = differing_params(runs)
    header = ["run", *params, *HEADLINE]
    rows = [header]
    for run in runs:
        metrics = run.data.metrics
        rows.append(
            [
                run.info.run_name or run.info.run_id[:8],
                *(run.data.params.get(key, "") for key in params),
                *(f"{metrics[key]:.4f}" if key in metrics else "" for key in HEADLINE),
            ]
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def overlay(
    runs: Sequence[Any], histories: dict[str, dict[str, list[float]]]
) -> Figure:
    """Validation and train accuracy and loss per epoch, one colour per run."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.5), dpi=100, layout="constrained")
    axes = figure.subplots(1, 2)
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for run, colour in zip(runs, colours, strict=True):
        history = histories[run.info.run_id]
        label = run.info.run_name or run.info.run_id[:8]
        for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
            for key, style, split in (
                (metric, ":", "train"),
                (f"val_{metric}", "-", "validation"),
            ):
                values = history.get(key, [])
                ax.plot(
                    range(1, len(values) + 1),
                    values,
                    style,
                    color=colour,
                    label=f"{label} ({split})",
                )
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: validation (solid) and train (dotted)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return figure


def latest_runs(client: Any, experiment_name: str, last: int) -> list[Any]:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise PipelineError(
            f"MLflow experiment {experiment_name!r} not found in "
            f"{tracking.redact(tracking.tracking_uri())}; run the pipeline first"
        )
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    return list(reversed(parents[:last]))


@cli.entry_point
def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.compare", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--last", type=int, default=5, help="how many latest runs")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("compare.png"),
        help="where to write the PNG",
    )
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    from mlflow.tracking import MlflowClient

    from pipeline.plot import save_png

    params = load_params(paths.params_path())
    client = MlflowClient(tracking_uri=tracking.tracking_uri())
    runs = latest_runs(client, params.mlflow.experiment_name, args.last)
    if not runs:
        raise PipelineError(
            "no finished top-level runs to compare; run the pipeline first"
        )
    histories = {
        run.info.run_id: {
            key: [
                m.value
                for m in sorted(
                    client.get_metric_history(run.info.run_id, key),
                    key=lambda m: m.step,
                )
            ]
            for key in ("accuracy", "val_accuracy", "loss", "val_loss")
        }
        for run in runs
    }
    print(table(runs))
    save_png(overlay(runs, histories), args.output)
    print(f"\nlearning curves overlaid: {args.output}")


if __name__ == "__main__":
    raise SystemExit(main())
