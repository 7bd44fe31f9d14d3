from __future__ import annotations

import copy

import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.schema import flatten, load_params, validate_params
from tests.conftest import REPO


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_validate_params_accepts_committed_params(raw: dict) -> None:
    params = validate_params(raw)
    assert params.model.hidden_units == [128, 64]
    assert params.data.kind == "synthetic"


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("data.n_samples", -5, r"data\.n_samples: .*greater than or equal to 10 .*-5"),
        ("data.n_samples", 10.5, r"data\.n_samples: .*integer.*10\.5"),
        ("data.n_informative", 30, r"data: n_informative \(30\) \+ n_redundant"),
        ("split.test_size", 1.5, r"split\.test_size: .*less than 1"),
        ("train.learning_rate", 0, r"train\.learning_rate: .*greater than 0"),
        ("train.batch_size", 0, r"train\.batch_size"),
        ("train.epochs", "ten", r"train\.epochs: .*integer.*'ten'"),
        ("train.early_stopping.patience", -1, r"train\.early_stopping\.patience"),
        ("model.dropout", 1.0, r"model\.dropout: .*less than 1"),
        ("model.l2", -0.1, r"model\.l2"),
        ("seed", 4.2, r"seed: .*integer"),
        ("model.activation", "swish", r"model\.activation: .*'relu'"),
    ],
)
def test_validate_params_names_the_bad_key(
    raw: dict, key: str, value, match: str
) -> None:
    bad = copy.deepcopy(raw)
    *parents, leaf = key.split(".")
    section = bad
    for part in parents:
        section = section[part]
    section[leaf] = value
    with pytest.raises(ConfigError, match=match) as info:
        validate_params(bad)
    assert "\n" not in str(info.value)


def test_validate_params_lists_allowed_keys_for_unknown_key(raw: dict) -> None:
    bad = copy.deepcopy(raw)
    bad["train"]["epoch"] = 3
    with pytest.raises(
        ConfigError, match=r"train\.epoch: unknown key; allowed keys here: .*epochs"
    ):
        validate_params(bad)


def test_validate_params_rejects_unknown_data_kind(raw: dict) -> None:
    bad = copy.deepcopy(raw)
    bad["data"]["kind"] = "parquet"
    with pytest.raises(
        ConfigError, match="data.kind: got 'parquet'; allowed: synthetic"
    ):
        validate_params(bad)


def test_load_params_reports_missing_file(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match="not found; run `python -m pipeline.compose`"
    ):
        load_params(tmp_path / "params.yaml")


def test_load_params_reports_broken_yaml(tmp_path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(path)


def test_flatten_uses_dotted_keys() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": 3}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": 3,
    }
