"""Bad input: one clear line, the right exit code, nothing partial left behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline import io
from pipeline.errors import ConfigError, DataError
from pipeline.generate import check_memory
from pipeline.io import load_arrays, save_arrays, write_json
from pipeline.model import load_model
from pipeline.schema import SyntheticData, validate_params
from tests.conftest import REPO, python, run


def test_write_disk_full_keeps_previous_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"accuracy": 0.9})
    before = target.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io.os, "fsync", full)
    with pytest.raises(DataError, match=r"metrics.json: cannot write \(No space left"):
        write_json(target, {"accuracy": 0.1})
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_write_into_read_only_folder_is_one_line(tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(io.tempfile, "mkstemp", refuse)
    with pytest.raises(DataError, match=r"cannot write \(Permission denied\)") as info:
        save_arrays(tmp_path / "out", {"X": np.zeros(3)})
    assert "\n" not in str(info.value)


def test_truncated_array_file_is_reported(tmp_path: Path) -> None:
    save_arrays(tmp_path, {"X": np.arange(1000, dtype=np.float32)})
    path = tmp_path / "X.npy"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=r"X.npy: not a readable .npy array"):
        load_arrays(tmp_path, ["X"])


@pytest.mark.parametrize(
    "content", [b"", b"\x89HDF\r\n\x1a\n" + b"\0" * 64, b"not a model"]
)
def test_model_swapped_for_another_format_is_reported(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"model.keras: not a Keras model archive"):
        load_model(path)


def test_too_many_rows_are_refused_before_any_work() -> None:
    config = SyntheticData(
        kind="synthetic",
        name="huge",
        n_samples=50_000_000,
        n_features=10_000,
        n_informative=10,
        n_redundant=0,
    )
    with pytest.raises(
        ConfigError, match=r"data.n_samples=50000000 .* lower data.n_samples"
    ):
        check_memory(config)
    check_memory(config.model_copy(update={"n_samples": 1000}))


@pytest.mark.parametrize("value", ["/etc", "../outside", "data/../../x"])
def test_output_paths_must_stay_inside_repository(value: str) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["paths"]["raw"] = value
    with pytest.raises(ConfigError, match=r"paths.raw: must be a relative path inside"):
        validate_params(raw)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("split.test_size=1.5", "split.test_size"),
        ("train.batch_size=0", "train.batch_size"),
        ("model.l2=-1", "model.l2"),
        ("seed=1.5", "seed"),
    ],
)
def test_stage_with_bad_params_exits_2_with_one_line(
    repo_copy: Path, override: str, key: str
) -> None:
    params = repo_copy / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    section, _, leaf = override.partition("=")[0].rpartition(".")
    target = raw[section] if section else raw
    target[leaf] = yaml.safe_load(override.partition("=")[2])
    params.write_text(yaml.safe_dump(raw))
    done = run(python("-m", "pipeline.split"), repo_copy, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: params.yaml: {key}")
    assert not (repo_copy / "data").joinpath("split").exists()
