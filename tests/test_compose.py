from __future__ import annotations

import pytest
import yaml

from pipeline.compose import compose, compose_text
from pipeline.errors import ConfigError
from tests.conftest import REPO, python, run

GROUPS = ("data", "model", "train", "experiment")


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (REPO / "conf" / group).glob("*.yaml"))


def test_committed_params_equal_composition_of_conf() -> None:
    committed = (REPO / "params.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(committed) == yaml.safe_load(compose_text(REPO)), (
        "params.yaml is stale: run `python -m pipeline.compose` and commit it"
    )
    assert committed == compose_text(REPO)


@pytest.mark.parametrize(
    ("group", "option"),
    [(group, option) for group in GROUPS for option in options(group)],
)
def test_compose_every_option_of_every_group(group: str, option: str) -> None:
    params = compose(REPO, [f"{group}={option}"])
    if group != "experiment":
        assert getattr(params, group).name == option


def test_compose_rejects_unknown_option_listing_valid_ones() -> None:
    with pytest.raises(
        ConfigError,
        match=r"model/nope.*Available options in 'model': baseline dropout l2",
    ):
        compose(REPO, ["model=nope"])


@pytest.mark.parametrize("override", ["train.epoch=3", "+train.epoch=3"])
def test_compose_rejects_misspelled_key(override: str) -> None:
    with pytest.raises(ConfigError, match=r"epoch"):
        compose(REPO, [override])


def test_compose_rejects_out_of_range_value() -> None:
    with pytest.raises(ConfigError, match=r"model\.dropout: .*less than 1"):
        compose(REPO, ["model.dropout=1.5"])


def test_compose_command_keeps_params_on_bad_override(repo_copy) -> None:
    before = (repo_copy / "params.yaml").read_bytes()
    done = run(
        python("-m", "pipeline.compose", "train.epochs=-1"), repo_copy, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "train.epochs" in done.stderr
    assert (repo_copy / "params.yaml").read_bytes() == before


def test_compose_command_writes_overrides(repo_copy) -> None:
    run(python("-m", "pipeline.compose", "model=l2", "train.epochs=7"), repo_copy)
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    assert params["model"]["name"] == "l2"
    assert params["train"]["epochs"] == 7
