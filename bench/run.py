"""Benchmark the pipeline against a plain Keras script, side by side.

Each round runs every measurement once, in an order that alternates from round
to round, so that a slow spell of a noisy machine does not land on one
measurement only; the table reports the median over the rounds, and ratios of
medians. Every pipeline measurement runs in a fresh copy of the repository
(empty DVC cache, empty MLflow store), under a temporary folder.

Measurements:
- ``reference``: ``bench/reference.py``, a plain Keras script (import, fit, total);
- ``numpy``: ``bench/numpy_floor.py``, the same training in NumPy (the floor);
- ``train``: the ``train`` stage alone on the default configuration;
- ``repro``: a cold ``dvc repro`` of the whole pipeline, then a no-op one;
- ``sweep``: four configurations queued and run two at a time, against the same
  four run one by one;
- ``scale``: every stage on 10^4, 10^5 and 10^6 rows (``experiment=million``),
  its wall time and peak memory (run once: it is long and not a ratio).

Run: ``make bench`` or ``python bench/run.py [--rounds N] [--only NAME ...]``.
The table is printed and written to ``bench/results.md``; the samples go to
``bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
STAGES = ("generate", "split", "train", "crossval", "evaluate", "plot")
SWEEP = ("model=l2", "model=dropout", "model=l2_dropout", "train=early_stopping")
SCALE_ROWS = (10_000, 100_000, 1_000_000)
FEATURES = 20
MEASUREMENTS = ("reference", "numpy", "train", "repro", "sweep", "scale")
FIT_LINE = re.compile(r"trained \d+ epochs \(best \d+\) in ([0-9.]+) s")


def environment() -> dict[str, str]:
    """The venv's tools first on PATH; no tracking or DVC settings inherited."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "DVC_", "PIPELINE_"))
    }
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


@dataclass
class Finished:
    """A finished command: its wall time, peak memory and output."""

    seconds: float
    peak_mib: float
    stdout: str
    stderr: str


def execute(command: Sequence[str], cwd: Path) -> Finished:
    """Run ``command`` to completion, timing it and reading its peak memory.

    Raises:
        SystemExit: The command failed; its output's tail is printed.
    """
    started = time.perf_counter()
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        subprocess.Popen(
            list(command), cwd=cwd, env=environment(), stdout=out, stderr=err
        ) as process,
    ):
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        sys.stderr.write(stderr[-3000:])
        raise SystemExit(
            f"bench: `{' '.join(command)}` in {cwd} exited {process.returncode}"
        )
    # ru_maxrss is in KiB on Linux
    return Finished(seconds, usage.ru_maxrss / 1024, stdout, stderr)


def git(cwd: Path, *args: str) -> None:
    env = {
        **environment(),
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def fresh_copy(parent: Path, name: str) -> Path:
    """The repository's tracked files as a new git repository: no DVC cache,
    no MLflow store, no outputs that git does not track."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = parent / name
    for item in filter(None, listing.split("\0")):
        source = REPO / item
        if source.is_file():
            (target / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / item)
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "benchmark copy")
    return target


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def script_json(finished: Finished) -> dict[str, float]:
    return json.loads(finished.stdout.strip().splitlines()[-1])


@dataclass
class Results:
    """Every sample of every measurement, in seconds unless named otherwise."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    scale: list[dict[str, float | int | str]] = field(default_factory=list)

    def add(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)
        print(f"  {name}: {value:.3f}", flush=True)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, top: str, bottom: str) -> float:
        """The median of the per-round ratios ``top / bottom``: each pair was
        measured in the same round, so a slow spell of the machine cancels."""
        pairs = zip(self.samples[top], self.samples[bottom], strict=True)
        return statistics.median(a / b for a, b in pairs)


def measure_reference(results: Results, work: Path) -> None:
    finished = execute(python(str(BENCH / "reference.py")), work)
    report = script_json(finished)
    results.add("reference.import", report["import_s"])
    results.add("reference.fit", report["fit_s"])
    results.add("reference.total", finished.seconds)
    results.add("reference.test_accuracy", report["test_accuracy"])


def measure_numpy(results: Results, work: Path) -> None:
    finished = execute(python(str(BENCH / "numpy_floor.py")), work)
    report = script_json(finished)
    results.add("numpy.fit", report["fit_s"])
    results.add("numpy.total", finished.seconds)
    results.add("numpy.test_accuracy", report["test_accuracy"])


class Bench:
    """The measurements of one benchmark run, sharing one temporary folder."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.copies = 0
        self._prepared: Path | None = None

    def copy(self, name: str) -> Path:
        self.copies += 1
        return fresh_copy(self.work, f"{self.copies:02d}-{name}")

    def prepared(self) -> Path:
        """A copy whose default pipeline has run once: the train stage's input."""
        if self._prepared is None:
            self._prepared = self.copy("prepared")
            execute(["dvc", "repro"], self._prepared)
            git(self._prepared, "add", "-A")
            git(self._prepared, "commit", "-q", "--allow-empty", "-m", "reproduced")
        return self._prepared

    def train(self, results: Results) -> None:
        finished = execute(python("-m", "pipeline.train"), self.prepared())
        match = FIT_LINE.search(finished.stderr)
        if match is None:
            raise SystemExit("bench: the train stage did not log its fit time")
        results.add("train.fit", float(match.group(1)))
        results.add("train.total", finished.seconds)

    def repro(self, results: Results) -> None:
        root = self.copy("cold")
        results.add("repro.cold", execute(["dvc", "repro"], root).seconds)
        results.add("repro.noop", execute(["dvc", "repro"], root).seconds)
        # what any dvc command costs before it does anything: the no-op's floor
        results.add("dvc.startup", execute(["dvc", "--version"], root).seconds)
        metrics = json.loads((root / "reports/evaluate/metrics.json").read_text())
        results.add("pipeline.test_accuracy", metrics["test"]["accuracy"])

    def sweep(self, results: Results, round_index: int) -> None:
        root = self.prepared()
        modes: list[tuple[str, Callable[[Path], float]]] = [
            ("sweep.sequential", sequential_sweep),
            ("sweep.queued", queued_sweep),
        ]
        if round_index % 2:
            modes.reverse()
        for name, mode in modes:
            reset(root)
            results.add(name, mode(root))


def reset(root: Path) -> None:
    """Back to the committed workspace, with no stage results to reuse: DVC
    would otherwise restore an experiment it has run before from its run cache."""
    git(root, "reset", "-q", "--hard")
    execute(["dvc", "checkout", "--force"], root)
    shutil.rmtree(root / ".dvc" / "cache" / "runs", ignore_errors=True)


def sequential_sweep(root: Path) -> float:
    started = time.perf_counter()
    for override in SWEEP:
        execute(["dvc", "exp", "run", "-S", override], root)
    return time.perf_counter() - started


def queued_sweep(root: Path) -> float:
    started = time.perf_counter()
    for override in SWEEP:
        execute(["dvc", "exp", "run", "--queue", "-S", override], root)
    execute(["dvc", "queue", "start", "-j", "2"], root)
    while True:
        status = execute(["dvc", "queue", "status"], root).stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(1)
    if "Failed" in status:
        raise SystemExit(f"bench: a queued experiment failed:\n{status}")
    return time.perf_counter() - started


def measure_scale(bench: Bench, results: Results) -> None:
    """Every stage, run directly, on growing data: wall time and peak memory."""
    for rows in SCALE_ROWS:
        root = bench.copy(f"scale-{rows}")
        execute(
            python(
                "-m", "pipeline.compose", "experiment=million", f"data.n_samples={rows}"
            ),
            root,
        )
        data_mib = rows * (FEATURES * 4 + 1) / 2**20
        for stage in STAGES:
            finished = execute(python("-m", f"pipeline.{stage}"), root)
            row = {
                "rows": rows,
                "stage": stage,
                "seconds": round(finished.seconds, 2),
                "peak_mib": round(finished.peak_mib),
                "limit_mib": round(2 * data_mib + 1024),
            }
            results.scale.append(row)
            print(f"  scale {rows} {stage}: {row}", flush=True)


# targets from the issue: (numerator, denominator or None, highest ratio allowed)
TARGETS: list[tuple[str, str, str | None, float]] = [
    ("train stage fit / reference fit", "train.fit", "reference.fit", 0.25),
    ("cold dvc repro / reference total", "repro.cold", "reference.total", 1.0),
    ("no-op dvc repro (seconds)", "repro.noop", None, 1.0),
    ("sweep -j 2 / one by one", "sweep.queued", "sweep.sequential", 0.65),
]

ROWS = [
    ("reference script: import", "reference.import"),
    ("reference script: fit", "reference.fit"),
    ("reference script: total (process)", "reference.total"),
    ("NumPy floor: fit", "numpy.fit"),
    ("NumPy floor: total (process)", "numpy.total"),
    ("train stage: fit", "train.fit"),
    ("train stage: total (process)", "train.total"),
    ("cold `dvc repro`, six stages", "repro.cold"),
    ("no-op `dvc repro`", "repro.noop"),
    ("`dvc --version` (DVC's start-up)", "dvc.startup"),
    ("4 experiments queued, `-j 2`", "sweep.queued"),
    ("4 experiments one by one", "sweep.sequential"),
]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from importlib.metadata import version

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; {platform.platform()}; "
        f"Python {platform.python_version()}, TensorFlow {version('tensorflow')}, "
        f"Keras {version('keras')}, DVC {version('dvc')}, MLflow {version('mlflow')}"
    )


def render(results: Results, rounds: int) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"Machine: {machine()}.",
        "",
        f"Medians of {rounds} alternating rounds; every sample in seconds. A "
        "ratio is the median of the ratios of samples taken in the same round.",
        "",
        "| measurement | median s | samples |",
        "|---|---:|---|",
    ]
    for label, name in ROWS:
        if name in results.samples:
            samples = ", ".join(f"{value:.2f}" for value in results.samples[name])
            lines.append(f"| {label} | {results.median(name):.2f} | {samples} |")
    lines += ["", "| target | ratio | allowed | verdict |", "|---|---:|---:|---|"]
    for label, top, bottom, allowed in TARGETS:
        if top not in results.samples or (
            bottom is not None and bottom not in results.samples
        ):
            continue
        ratio = results.median(top) if bottom is None else results.ratio(top, bottom)
        verdict = "met" if ratio <= allowed else f"missed by {ratio / allowed:.1f}x"
        lines.append(f"| {label} | {ratio:.2f} | {allowed:.2f} | {verdict} |")
    for name in ("numpy.fit",):
        if name in results.samples and "reference.fit" in results.samples:
            ratio = results.ratio(name, "reference.fit")
            lines.append(f"| NumPy floor fit / reference fit | {ratio:.2f} | | floor |")
    if "pipeline.test_accuracy" in results.samples:
        ours = results.median("pipeline.test_accuracy")
        theirs = results.median("reference.test_accuracy")
        verdict = "met" if ours >= theirs - 0.01 else "missed"
        lines.append(
            f"| test accuracy: pipeline {ours:.4f}, reference {theirs:.4f} | "
            f"{ours - theirs:+.4f} | -0.01 | {verdict} |"
        )
    if results.scale:
        lines += [
            "",
            "## Scale: every stage on 10^4, 10^5 and 10^6 rows",
            "",
            "`experiment=million` (batch 1024, 10 epochs) with `data.n_samples` "
            "set; each stage run once as its own process. Limit: twice the data's "
            "size in memory (float32 features, int8 labels) plus 1 GiB. Per row: "
            "the stage's time above its time on 10^4 rows, which is mostly "
            "start-up, per row added.",
            "",
            "| rows | stage | wall s | µs per row | peak MiB | limit MiB | ok |",
            "|---:|---|---:|---:|---:|---:|---|",
        ]
        base = {
            row["stage"]: float(row["seconds"])
            for row in results.scale
            if row["rows"] == SCALE_ROWS[0]
        }
        for row in results.scale:
            rows = int(row["rows"])
            added = float(row["seconds"]) - base[str(row["stage"])]
            per_row = (
                f"{added / (rows - SCALE_ROWS[0]) * 1e6:.1f}"
                if rows > SCALE_ROWS[0]
                else ""
            )
            ok = "yes" if row["peak_mib"] <= row["limit_mib"] else "no"
            lines.append(
                f"| {rows:,} | {row['stage']} | {row['seconds']} | {per_row} | "
                f"{row['peak_mib']} | {row['limit_mib']} | {ok} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="at least 3 for a median")
    parser.add_argument(
        "--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS)
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    args = parser.parse_args(argv)
    results = Results()
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as folder:
        work = Path(folder)
        bench = Bench(work)
        plain: dict[str, Callable[[], None]] = {
            "reference": lambda: measure_reference(results, work),
            "numpy": lambda: measure_numpy(results, work),
            "train": lambda: bench.train(results),
            "repro": lambda: bench.repro(results),
        }
        for index in range(args.rounds):
            print(f"round {index + 1} of {args.rounds}", flush=True)
            order = [name for name in plain if name in args.only]
            if index % 2:
                order.reverse()
            for name in order:
                plain[name]()
            if "sweep" in args.only:
                bench.sweep(results, index)
        if "scale" in args.only:
            measure_scale(bench, results)
    table = render(results, args.rounds)
    args.output.write_text(table)
    args.output.with_suffix(".json").write_text(
        json.dumps({"samples": results.samples, "scale": results.scale}, indent=1)
        + "\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
