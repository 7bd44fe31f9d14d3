from __future__ import annotations

from pipeline.verify import (
    MetricCheck,
    compare_metrics,
    compare_outputs,
    format_table,
    verdict,
)


def lock(**hashes: str) -> dict:
    stages: dict = {}
    for key, digest in hashes.items():
        stage, _, name = key.partition("__")
        stages.setdefault(stage, {"outs": []})["outs"].append(
            {"path": name.replace("_", "/"), "md5": digest}
        )
    return {"schema": "2.0", "stages": stages}


def test_verify_passes_when_every_output_matches() -> None:
    committed = lock(generate__data_raw="aa.dir", train__models_model="bb")
    outputs = compare_outputs(committed, committed)
    metrics = compare_metrics({"m:test.accuracy": 0.9}, {"m:test.accuracy": 0.9}, 0.02)
    assert all(check.match for check in outputs)
    assert verdict(outputs, metrics) == []
    assert "all 1 metrics equal" in format_table(outputs, metrics)


def test_verify_fails_when_a_data_output_differs() -> None:
    outputs = compare_outputs(
        lock(generate__data_raw="aa.dir"), lock(generate__data_raw="cc.dir")
    )
    assert verdict(outputs, []) == ["data output data/raw of stage generate differs"]
    assert "NO" in format_table(outputs, [])


def test_verify_tolerates_model_difference_within_metric_tolerance() -> None:
    outputs = compare_outputs(
        lock(train__models_model="bb"), lock(train__models_model="dd")
    )
    metrics = compare_metrics(
        {"m:test.accuracy": 0.90}, {"m:test.accuracy": 0.91}, 0.02
    )
    assert verdict(outputs, metrics) == []
    table = format_table(outputs, metrics)
    assert "m:test.accuracy" in table and "1.00e-02" in table


def test_verify_fails_beyond_tolerance_or_missing_metric() -> None:
    too_far = MetricCheck("m:test.accuracy", 0.90, 0.85, 0.02)
    missing = MetricCheck("m:test.loss", 0.3, None, 0.02)
    problems = verdict([], [too_far, missing])
    assert problems[0].startswith("metric m:test.accuracy differs by 0.05")
    assert problems[1] == "metric m:test.loss is missing"
