"""The benchmark's own parts: its floor trains for real, its table judges right."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = bench  # dataclasses look their module up here
_spec.loader.exec_module(bench)


def test_numpy_floor_learns_the_default_data() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "numpy_floor.py"), "--epochs", "5"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["test_accuracy"] >= 0.85
    assert report["final_val_accuracy"] >= 0.85
    assert 0 < report["fit_s"] < report["script_s"]


def test_table_reports_ratios_of_medians_and_how_far_a_target_is_missed() -> None:
    results = bench.Results()
    for name, samples in {
        "reference.fit": [10.0, 8.0, 9.0],
        "train.fit": [3.0, 2.0, 100.0],
        "reference.total": [20.0, 20.0, 20.0],
        "repro.cold": [60.0, 50.0, 70.0],
        "repro.noop": [0.5, 0.9, 0.4],
        "sweep.queued": [60.0, 60.0, 60.0],
        "sweep.sequential": [100.0, 100.0, 100.0],
        "reference.test_accuracy": [0.93, 0.93, 0.93],
        "pipeline.test_accuracy": [0.925, 0.925, 0.925],
    }.items():
        results.samples[name] = samples
    table = bench.render(results, rounds=3)
    # per-round ratios 0.30, 0.25, 11.1: one wild round does not move the median
    assert "| train stage fit / reference fit | 0.30 | 0.25 | missed by 1.2x |" in table
    assert (
        "| cold dvc repro / reference total | 3.00 | 1.00 | missed by 3.0x |" in table
    )
    assert "| no-op dvc repro (seconds) | 0.50 | 1.00 | met |" in table
    assert "| sweep -j 2 / one by one | 0.60 | 0.65 | met |" in table
    assert "pipeline 0.9250, reference 0.9300 | -0.0050 | -0.01 | met |" in table
    assert "| train stage: fit | 3.00 | 3.00, 2.00, 100.00 |" in table
