"""Every data option, and the one-line errors for bad CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.compose import compose
from pipeline.errors import DataError
from pipeline.generate import generate, read_csv
from pipeline.schema import CsvData
from tests.conftest import REPO, python, run

# ten rows, alternating labels 0 and 1
GOOD = "a,b,label\n" + "".join(f"{2 * i + 1},{2 * i + 2},{i % 2}\n" for i in range(10))


def csv_config(path: Path, **changes) -> CsvData:
    values = {"kind": "csv", "name": "csv", "path": str(path), "label_column": "label"}
    return CsvData(**{**values, **changes})


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", r"the file is empty"),
        ("a,b,label\n", r"header only, no rows"),
        (GOOD.replace("3,4,1", "3,,1"), r"column 'b' has a missing value on line 3"),
        (GOOD.replace("3,4,1", "3,inf,1"), r"column 'b' holds infinity"),
        (
            GOOD.replace("3,4,1", "3,four,1"),
            r"column 'b' holds text \('four' on line 3\)",
        ),
        (
            GOOD.replace("label", "target"),
            r"no label column 'label' \(columns: a, b, target\)",
        ),
        (
            GOOD.replace(",1\n", ",2\n"),
            r"column 'label' holds \[0, 2\]; labels must be 0 and 1",
        ),
        (GOOD.replace(",1\n", ",0\n"), r"column 'label' has no rows of class 1"),
        ("a,label\n" + "1,0\n" * 20 + "2,1\n", r"only 1 rows of one class"),
        (GOOD.replace("3,4,1", "3,4,"), r"column 'label' has missing labels"),
    ],
)
def test_read_csv_rejects_bad_file_with_one_line(
    tmp_path: Path, content: str, match: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        read_csv(csv_config(path), tmp_path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_read_csv_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"CSV file not found; set data.path"):
        read_csv(csv_config(tmp_path / "nope.csv"), tmp_path)


def test_read_csv_refuses_relative_path_outside_repository(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"points outside the repository"):
        read_csv(csv_config(Path("../../etc/passwd")), tmp_path)


def test_read_csv_maps_configured_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(GOOD.replace(",1\n", ",yes\n").replace(",0\n", ",no\n"))
    X, y, names = read_csv(
        csv_config(path, positive_label="yes", negative_label="no"), tmp_path
    )
    assert names == ["a", "b"] and X.dtype == np.float32
    assert y.tolist() == [0, 1] * 5


def test_read_csv_rejects_labels_outside_mapping(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(GOOD.replace(",1\n", ",maybe\n"))
    with pytest.raises(
        DataError, match=r"holds \['0', 'maybe'\] besides the configured"
    ):
        read_csv(csv_config(path, positive_label="yes", negative_label="no"), tmp_path)


@pytest.mark.parametrize(
    "option", ["synthetic", "small_noisy", "imbalanced", "breast_cancer", "csv"]
)
def test_generate_every_data_option(option: str) -> None:
    params = compose(REPO, [f"data={option}"])
    X, y, names = generate(params.data, seed=params.seed, root=REPO)
    assert X.dtype == np.float32 and X.ndim == 2 and len(X) == len(y) == 0 + len(y)
    assert len(names) == X.shape[1]
    assert set(np.unique(y).tolist()) == {0, 1}
    if option == "imbalanced":
        assert 0.01 <= y.mean() <= 0.05


def test_generate_stage_fails_with_one_line_on_bad_csv(repo_copy: Path) -> None:
    (repo_copy / "data/external/bad.csv").write_text(GOOD.replace("3,4,1", "3,x,1"))
    run(
        python(
            "-m",
            "pipeline.compose",
            "data=csv",
            "data.path=data/external/bad.csv",
            "data.label_column=label",
            "~data.positive_label",
            "~data.negative_label",
        ),
        repo_copy,
    )
    done = run(python("-m", "pipeline.generate"), repo_copy, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "column 'b' holds text" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (repo_copy / "data/raw").exists()
