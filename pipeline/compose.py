"""Compose ``conf/`` into ``params.yaml``, the file every stage reads.

``dvc exp run -S key=value`` does the same composition itself (DVC's Hydra
mode); ``dvc repro`` does not, so run this after editing ``conf/``:

    python -m pipeline.compose                      # the defaults
    python -m pipeline.compose model=l2 train.epochs=20
    python -m pipeline.compose experiment=overfit

The result is validated against the schema before it replaces ``params.yaml``,
so a bad override leaves the previous file as it was.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from pipeline import cli, paths
from pipeline.errors import ConfigError
from pipeline.io import atomic_path
from pipeline.schema import Params, validate_params

logger = logging.getLogger(__name__)

CONFIG_DIR = "conf"
CONFIG_NAME = "config"


def compose_text(root: Path, overrides: Sequence[str] = ()) -> str:
    """The YAML text of ``params.yaml`` for ``overrides``, exactly as DVC writes it.

    Raises:
        ConfigError: An override names an unknown group option or key, or the
            composed values fail the schema.
    """
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    root = root.resolve()
    with tempfile.TemporaryDirectory(prefix="compose-") as folder:
        target = Path(folder) / paths.PARAMS_FILE
        try:
            # DVC's own composition, so `dvc exp run -S` writes the same bytes
            compose_and_dump(
                target,
                str(root / CONFIG_DIR),
                None,
                CONFIG_NAME,
                str(root),
                list(overrides),
            )
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError(f"conf/: {_one_line(exc)}") from None
        text = target.read_text(encoding="utf-8")
    validate_params(yaml.safe_load(text), source="composed conf/")
    return text


def compose(root: Path, overrides: Sequence[str] = ()) -> Params:
    """Compose and validate the configuration without writing anything."""
    return validate_params(yaml.safe_load(compose_text(root, overrides)))


def _one_line(exc: BaseException) -> str:
    """Hydra's message on one line, without its config search path listing."""
    text = str(exc).split("Config search path")[0]
    text = " ".join(text.split()).removeprefix("In 'config': ")
    return text or type(exc).__name__


@cli.entry_point
def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.compose", description=__doc__.splitlines()[0]
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=l2")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write (default: params.yaml)",
    )
    args = parser.parse_args()

    root = paths.work_root()
    if not (root / CONFIG_DIR / f"{CONFIG_NAME}.yaml").is_file():
        raise ConfigError(
            f"{root / CONFIG_DIR}: no {CONFIG_NAME}.yaml; run from the repository root"
        )
    text = compose_text(root, args.overrides)
    output = args.output or root / paths.PARAMS_FILE
    with atomic_path(output) as tmp:
        tmp.write_text(text, encoding="utf-8")
    logger.info(
        "wrote %s%s",
        output,
        f" with {' '.join(args.overrides)}" if args.overrides else "",
    )


if __name__ == "__main__":
    raise SystemExit(main())
