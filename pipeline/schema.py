"""Typed schema of ``params.yaml`` and its loader.

Every stage reads ``params.yaml`` through :func:`load_params`, which validates
it against :class:`Params`. A wrong type, a value out of range or an unknown
key raises :class:`~pipeline.errors.ConfigError` with one line that names the
key and what is allowed.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from pipeline.errors import ConfigError

PositiveInt = Annotated[int, Field(strict=True, gt=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, ints stay ints."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticData(Strict):
    """Data made by :func:`sklearn.datasets.make_classification`."""

    kind: Literal["synthetic"]
    name: str
    n_samples: Annotated[int, Field(strict=True, ge=10, le=50_000_000)]
    n_features: Annotated[int, Field(strict=True, ge=2, le=10_000)]
    n_informative: PositiveInt
    n_redundant: Annotated[int, Field(strict=True, ge=0)]
    class_sep: Annotated[float, Field(gt=0)] = 1.0
    flip_y: Annotated[float, Field(ge=0, lt=0.5)] = 0.01
    positive_fraction: Fraction = 0.5

    @model_validator(mode="after")
    def _check_feature_counts(self) -> SyntheticData:
        if self.n_informative + self.n_redundant > self.n_features:
            raise ValueError(
                f"n_informative ({self.n_informative}) + n_redundant "
                f"({self.n_redundant}) must not exceed n_features "
                f"({self.n_features})"
            )
        return self


class BreastCancerData(Strict):
    """scikit-learn's bundled Wisconsin diagnostic breast cancer data."""

    kind: Literal["breast_cancer"]
    name: str


class CsvData(Strict):
    """The user's own CSV file: numeric feature columns and one label column."""

    kind: Literal["csv"]
    name: str
    path: Annotated[str, Field(min_length=1)]
    label_column: Annotated[str, Field(min_length=1)]
    positive_label: str | int | None = None
    negative_label: str | int | None = None

    @model_validator(mode="after")
    def _check_label_mapping(self) -> CsvData:
        if (self.positive_label is None) != (self.negative_label is None):
            raise ValueError(
                "set both positive_label and negative_label, or neither "
                "(then the labels must already be 0 and 1)"
            )
        return self


DATA_KINDS = ("synthetic", "breast_cancer", "csv")

DataConfig = Annotated[
    SyntheticData | BreastCancerData | CsvData, Field(discriminator="kind")
]


class SplitConfig(Strict):
    test_size: Fraction


class ModelConfig(Strict):
    name: str
    hidden_units: Annotated[list[PositiveInt], Field(min_length=1, max_length=16)]
    activation: Literal["relu", "tanh", "gelu", "elu", "selu", "sigmoid"] = "relu"
    l2: Annotated[float, Field(ge=0, le=10)] = 0.0
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


class EarlyStoppingConfig(Strict):
    enabled: bool = False
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    patience: Annotated[int, Field(strict=True, ge=0, le=10_000)] = 10
    restore_best_weights: bool = True


class TrainConfig(Strict):
    name: str
    epochs: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    batch_size: Annotated[int, Field(strict=True, ge=1, le=1_048_576)]
    learning_rate: Annotated[float, Field(gt=0, le=10)]
    validation_size: Fraction
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    class_weight: Literal["none", "balanced"] = "none"
    steps_per_execution: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 1


class CrossValidationConfig(Strict):
    enabled: bool = True
    n_splits: Annotated[int, Field(strict=True, ge=2, le=50)] = 5


class EvaluateConfig(Strict):
    threshold: Fraction = 0.5
    cross_validation: CrossValidationConfig = CrossValidationConfig()


class MlflowConfig(Strict):
    experiment_name: Annotated[str, Field(min_length=1)]
    registered_model_name: Annotated[str, Field(min_length=1)]
    champion_alias: Annotated[str, Field(min_length=1)] = "champion"
    champion_metric: str = "test.roc_auc"


class RuntimeConfig(Strict):
    intra_op_threads: Annotated[int, Field(strict=True, ge=0, le=1024)] = 2
    inter_op_threads: Annotated[int, Field(strict=True, ge=0, le=1024)] = 1
    onednn: bool = False
    deterministic_ops: bool = True


class VerifyConfig(Strict):
    metric_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.02


def _inside_repository(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not value.strip():
        raise ValueError("must be a relative path inside the repository")
    return value


RepositoryPath = Annotated[str, AfterValidator(_inside_repository)]


class PathsConfig(Strict):
    """Where stages write, relative to the repository (``dvc.yaml`` reads them)."""

    raw: RepositoryPath
    split: RepositoryPath
    model: RepositoryPath
    train_reports: RepositoryPath
    evaluate_reports: RepositoryPath
    crossval_reports: RepositoryPath
    plots: RepositoryPath


class Params(Strict):
    """The whole of ``params.yaml``."""

    seed: Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)]
    data: DataConfig
    split: SplitConfig
    model: ModelConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    mlflow: MlflowConfig
    runtime: RuntimeConfig
    verify: VerifyConfig = VerifyConfig()
    paths: PathsConfig


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    """Turn one pydantic error into 'key: problem' for a user."""
    loc = [str(part) for part in error["loc"]]
    # a discriminated union adds the chosen kind to the location; drop it
    if len(loc) > 1 and loc[0] == "data" and loc[1] in DATA_KINDS:
        loc.pop(1)
    key = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        section = _section_fields(model, loc[:-1], error.get("input"))
        allowed = ", ".join(sorted(section)) if section else "none"
        return f"{key}: unknown key; allowed keys here: {allowed}"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "union_tag_invalid":
        return (
            f"{key}.kind: got {error['input'].get('kind')!r}; "
            f"allowed: {', '.join(DATA_KINDS)}"
        )
    message = error["msg"].removeprefix("Value error, ")
    received = error.get("input")
    if isinstance(received, dict | list):
        return f"{key}: {message}"
    return f"{key}: {message} (got {received!r})"


def _section_fields(model: type[BaseModel], loc: list[str], data: Any) -> set[str]:
    """Names of the keys allowed at ``loc`` (best effort, for error messages)."""
    fields: dict[str, Any] = dict(model.model_fields)
    for part in loc:
        field = fields.get(part)
        if field is None:
            return set()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = dict(annotation.model_fields)
        else:
            # the data union: show the keys common to every kind plus the others
            members = getattr(annotation, "__args__", ())
            fields = {}
            for member in members:
                if isinstance(member, type) and issubclass(member, BaseModel):
                    fields.update(member.model_fields)
    return set(fields)


def validate_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a parsed ``params.yaml``.

    Args:
        raw: The parsed YAML document.
        source: Where the document came from, for the error message.

    Returns:
        The validated parameters.

    Raises:
        ConfigError: One line naming the first bad key and what is allowed.
    """
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping of keys, got {type(raw).__name__}; "
            "run `python -m pipeline.compose` to write it from conf/"
        )
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more)" if more else ""
        raise ConfigError(
            f"{source}: {_describe(first, Params)}{suffix}; fix it in conf/ "
            "(or with an override) and run `python -m pipeline.compose`"
        ) from None


def load_params(path: Path) -> Params:
    """Read and validate ``params.yaml``.

    Raises:
        ConfigError: The file is missing, not YAML, or fails validation.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: not found; run `python -m pipeline.compose` to write it"
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{path}: not valid YAML{where}; fix or recompose it"
        ) from None
    return validate_params(raw, source=str(path.name))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
