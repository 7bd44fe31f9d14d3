"""MLflow tracking: one top-level run per pipeline execution, a child per stage.

DVC runs each stage as its own process, so the stages of one execution find
their common top-level run through a tag: the identity of the ``dvc`` process
that launched them (its pid, start time and host). ``dvc repro``, ``dvc exp
run`` and every queued experiment are each one such process. When
``MLFLOW_RUN_ID`` is set, as ``mlflow run`` does, that run is the top-level run.

The default store is SQLite at the repository root with artifacts beside it;
``MLFLOW_TRACKING_URI`` points elsewhere, an ``mlflow server`` for instance.

When the store fails, the stage stops with one line and its runs end FAILED
if the store can still be written; runs that could not be ended (the server
had died, the stage was killed) are ended FAILED by the next execution on the
same host. Two environment variables bound the waiting:

- ``PIPELINE_SQLITE_TIMEOUT`` (seconds, default 30): how long each call waits
  while another process holds the SQLite store's write lock.
- ``PIPELINE_TRACKING_HEARTBEAT`` (seconds, default 15, 0 turns it off): how
  often a stage asks a remote store about its run, so that a long training
  stops soon after the server dies rather than when it logs its results.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import logging
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

from pipeline import paths
from pipeline.errors import ConfigError, Interrupted, TrackingError
from pipeline.schema import Params, flatten

logger = logging.getLogger(__name__)

STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
EXECUTION_TAG = "pipeline.execution"
STAGE_TAG = "pipeline.stage"
PARAMS_LOGGED_TAG = "pipeline.params_logged"
SQLITE_TIMEOUT_ENV = "PIPELINE_SQLITE_TIMEOUT"
HEARTBEAT_ENV = "PIPELINE_TRACKING_HEARTBEAT"

# fail within seconds when a server is unreachable, instead of MLflow's minutes
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite store at the repository root."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{paths.repository_root() / STORE_FILE}"


def redact(uri: str) -> str:
    """The URI without user name or password, for messages and tags."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return uri


def _artifact_location(uri: str) -> str | None:
    """Artifact root for a new experiment: beside a local store, else the server's."""
    if uri.startswith("sqlite:") or not urlsplit(uri).scheme:
        return (paths.repository_root() / ARTIFACTS_DIR).as_uri()
    return None


def execution_key() -> str:
    """Identify this pipeline execution: the nearest ``dvc`` ancestor process.

    Falls back to this process when no ``dvc`` process launched it, so a stage
    run by hand gets a top-level run of its own.
    """
    process = psutil.Process()
    for ancestor in process.parents():
        try:
            command = ancestor.cmdline()[:3]
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if any(Path(part).name == "dvc" for part in command):
            process = ancestor
            break
    return f"{socket.gethostname()}:{process.pid}:{process.create_time():.3f}"


def git_tags(root: Path) -> dict[str, str]:
    """The commit and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"mlflow.source.git.commit": commit, "git.dirty": str(dirty).lower()}


def environment_tags(params: Params) -> dict[str, str]:
    """Versions, CPU and thread settings that can change a run's numbers."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    tags = {
        "env.python": platform.python_version(),
        "env.platform": platform.platform(),
    }
    for package in (
        "tensorflow",
        "keras",
        "numpy",
        "scikit-learn",
        "mlflow",
        "dvc",
        "hydra-core",
    ):
        try:
            tags[f"env.{package}"] = version(package)
        except PackageNotFoundError:
            tags[f"env.{package}"] = "not installed"
    model, flags = _cpu()
    tags["env.cpu"] = model
    tags["env.cpu_flags"] = flags
    tags["env.cpu_count"] = str(os.cpu_count())
    tags["env.intra_op_threads"] = str(params.runtime.intra_op_threads)
    tags["env.inter_op_threads"] = str(params.runtime.inter_op_threads)
    tags["env.TF_ENABLE_ONEDNN_OPTS"] = "1" if params.runtime.onednn else "0"
    tags["env.deterministic_ops"] = str(params.runtime.deterministic_ops).lower()
    return tags


# the CPU features that decide which kernels TensorFlow and NumPy run
_CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile")


def _cpu() -> tuple[str, str]:
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), ""
    model, flags = platform.machine(), set()
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
            break
    return model, " ".join(flag for flag in _CPU_FLAGS if flag in flags)


def lock_entry(root: Path, stage: str) -> dict[str, Any]:
    """The stage's entry in ``dvc.lock`` (empty when there is none yet)."""
    import yaml

    try:
        lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return dict(lock.get("stages", {}).get(stage) or {})


def output_hash(root: Path, stage: str, path: str) -> str | None:
    """DVC's hash of an output of ``stage``, as ``dvc.lock`` records it."""
    for out in lock_entry(root, stage).get("outs", []):
        if out.get("path") == path:
            return out.get("md5")
    return None


def param_values(tree: Mapping[str, Any]) -> dict[str, str]:
    """Flatten params to dotted keys with string values, as MLflow stores them."""
    return {
        key: json.dumps(value) if isinstance(value, list | dict) else str(value)
        for key, value in flatten(dict(tree)).items()
    }


class StageRun:
    """The MLflow child run of one stage, and its top-level run."""

    def __init__(self, client: Any, run_id: str, parent_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.parent_id = parent_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params (flattened, dotted keys) on the stage run."""
        self._log_batch(self.run_id, params=param_values(params))

    def log_metrics(
        self, metrics: Mapping[str, float], *, on_parent: bool = False
    ) -> None:
        """Log metrics on the stage run, and on the top-level run if asked."""
        for run_id in self._targets(on_parent):
            self._log_batch(run_id, metrics={k: float(v) for k, v in metrics.items()})

    def log_history(
        self, history: Mapping[str, Sequence[float]], *, on_parent: bool = False
    ) -> None:
        """Log per-epoch values as step metrics (step = epoch, from 1)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for key, values in history.items()
            for step, value in enumerate(values, start=1)
        ]
        for run_id in self._targets(on_parent):
            for start in range(0, len(metrics), 1000):
                self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def log_artifact(
        self, path: Path, artifact_path: str | None = None, *, on_parent: bool = False
    ) -> None:
        """Log a file or folder as an artifact of the stage run."""
        for run_id in self._targets(on_parent):
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), artifact_path)
            else:
                self.client.log_artifact(run_id, str(path), artifact_path)

    def log_dataset(self, root: Path, path: str, *, context: str, digest: str) -> None:
        """Record a data input of the stage run, identified by its DVC hash."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        with warnings.catch_warnings():
            # MLflow registers the local file source twice and says so on every call
            warnings.filterwarnings(
                "ignore", message="The specified dataset source", category=UserWarning
            )
            source = resolve_dataset_source((root / path).as_uri())
        dataset = MetaDataset(source=source, name=path, digest=digest)
        tags = [InputTag(key="mlflow.data.context", value=context)]
        self.client.log_inputs(
            self.run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags)]
        )

    def record_inputs(
        self, root: Path, inputs: Mapping[str, str], *, context: str
    ) -> dict[str, str]:
        """Log the inputs earlier stages produced, by their hashes in ``dvc.lock``.

        Args:
            root: The workspace holding ``dvc.lock``.
            inputs: Output path to the stage that wrote it.
            context: What the stage does with them, e.g. ``training``.

        Returns:
            Each input path with its DVC hash (inputs not in ``dvc.lock`` left out).
        """
        hashes = {}
        for path, stage in inputs.items():
            digest = output_hash(root, stage, path)
            if digest is not None:
                hashes[path] = digest
                self.log_dataset(root, path, context=context, digest=digest)
        self.set_tags({f"dvc.input.{path}": digest for path, digest in hashes.items()})
        return hashes

    def set_tags(self, tags: Mapping[str, str], *, on_parent: bool = False) -> None:
        for run_id in self._targets(on_parent):
            self._log_batch(run_id, tags=tags)

    def _targets(self, on_parent: bool) -> list[str]:
        return [self.run_id, self.parent_id] if on_parent else [self.run_id]

    def _log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )


def _experiment_id(client: Any, name: str, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name, _artifact_location(uri)))
    except MlflowException:
        # another stage of a parallel experiment created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def _parent_run_id(client: Any, experiment_id: str, params: Params, tags: dict) -> str:
    """Find or create the top-level run of this pipeline execution."""
    key = execution_key()
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{EXECUTION_TAG}` = '{key}'",
        max_results=1,
    )
    if found:
        return str(found[0].info.run_id)

    name = os.environ.get("DVC_EXP_NAME") or f"{params.data.name}-{params.model.name}"
    run = client.create_run(
        experiment_id,
        run_name=name,
        tags={
            **tags,
            **environment_tags(params),
            EXECUTION_TAG: key,
            PARAMS_LOGGED_TAG: "true",
        },
    )
    StageRun(client, run.info.run_id, run.info.run_id).log_params(params.model_dump())
    return str(run.info.run_id)


def _given_parent(client: Any, run_id: str, params: Params, tags: dict) -> str:
    """Adopt the run ``mlflow run`` created; return its experiment id."""
    parent = client.get_run(run_id)
    if PARAMS_LOGGED_TAG not in parent.data.tags:
        run = StageRun(client, run_id, run_id)
        run.log_params(params.model_dump())
        run.set_tags({**tags, **environment_tags(params), PARAMS_LOGGED_TAG: "true"})
    return str(parent.info.experiment_id)


@contextlib.contextmanager
def stage_run(stage: str, params: Params) -> Iterator[StageRun]:
    """Open the MLflow child run of ``stage`` under this execution's top-level run.

    The child ends FINISHED when the block succeeds, FAILED when it raises and
    KILLED when it is interrupted; the top-level run follows it.

    Raises:
        TrackingError: The tracking store cannot be reached or written, before
            the block or inside it (a remote store is checked while it runs).
        ConfigError: ``PIPELINE_SQLITE_TIMEOUT`` or
            ``PIPELINE_TRACKING_HEARTBEAT`` is not a number of seconds.
    """
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # no usage reports from a pipeline run: results stay on the user's machines
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # MLflow logs a store error with its traceback before raising it; the
    # stage reports it as one line (PIPELINE_DEBUG=1 shows the traceback)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    heartbeat = _seconds(HEARTBEAT_ENV, 15.0)

    import mlflow

    uri = tracking_uri()
    if redact(uri) != uri:
        # MLflow prints run links with the URI as given, credentials and all
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if uri.startswith("sqlite:"):
        _wait_for_sqlite_locks(_seconds(SQLITE_TIMEOUT_ENV, 30.0))
    mlflow.set_tracking_uri(uri)
    tags = git_tags(paths.work_root())
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    logger.info("opening MLflow tracking store %s", redact(uri))
    try:
        with _store_lock(uri):
            client, experiment_id, parent_id, given = _open(uri, params, tags)
        child = client.create_run(
            experiment_id,
            run_name=stage,
            tags={**tags, STAGE_TAG: stage, "mlflow.parentRunId": parent_id},
        )
        if not given:
            client.update_run(parent_id, status="RUNNING")
    except (*_store_errors(), OSError) as exc:
        raise _store_error(uri, exc) from None

    run = StageRun(client, child.info.run_id, parent_id)
    logger.info("MLflow run %s (stage %s) under %s", run.run_id, stage, parent_id)
    status = "FAILED"
    try:
        with _Heartbeat(uri, run.run_id, stage, 0.0 if _is_local(uri) else heartbeat):
            yield run
        status = "FINISHED"
    except (KeyboardInterrupt, Interrupted):
        status = "KILLED"
        raise
    except _store_errors() as exc:
        raise _store_error(uri, exc) from None
    finally:
        _end(client, run, status)


def _seconds(name: str, default: float) -> float:
    """A number of seconds (0 or more) from environment variable ``name``.

    Raises:
        ConfigError: The variable is set to something else.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(
            f"{name}={text!r}: expected a number of seconds, e.g. {default:g}; "
            "fix or unset it"
        )
    return value


def _is_local(uri: str) -> bool:
    """Whether the store is a file on this machine: SQLite or a folder."""
    return uri.startswith(("sqlite:", "file:")) or not urlsplit(uri).scheme


def _store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a failing store raises: MLflow's, and SQLAlchemy's from
    opening an SQLite file, which MLflow lets through unwrapped."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    return (MlflowException, SQLAlchemyError)


def _store_error(uri: str, exc: BaseException) -> TrackingError:
    """One line for a failed call to the store, naming it and what to do."""
    if uri.startswith("sqlite:") and "database is locked" in str(exc):
        return TrackingError(
            f"MLflow tracking store {_sqlite_path(uri)} is locked by another "
            f"process (waited {_busy_timeout_ms / 1000:g} s, {SQLITE_TIMEOUT_ENV}); "
            "let that process finish or stop it, then rerun `dvc repro`"
        )
    if isinstance(exc, OSError):
        reason = scrub(exc.strerror or str(exc))
    else:
        reason = _first_line(exc)
    return TrackingError(
        f"MLflow tracking store {redact(uri)}: {reason}; check that it is "
        "reachable or set MLFLOW_TRACKING_URI, then rerun `dvc repro`"
    )


def _sqlite_path(uri: str) -> str:
    """The database file of an ``sqlite:///`` URI."""
    return uri.removeprefix("sqlite:///").partition("?")[0]


# SQLite's busy timeout for the store, in milliseconds, set by stage_run
_busy_timeout_ms = 30_000
_BUSY_TIMEOUT_PRAGMA = re.compile(r"\s*PRAGMA\s+busy_timeout\b", re.IGNORECASE)


def _wait_for_sqlite_locks(seconds: float) -> None:
    """Make each call to an SQLite store wait up to ``seconds`` for a lock that
    another process holds, then fail with "database is locked".

    MLflow opens the store with Python's default of 5 s and then runs every
    session under a fixed ``PRAGMA busy_timeout = 20000``; these listeners set
    both to ``seconds``. Should MLflow stop sending that statement, its
    sessions keep whatever timeout it sets instead.
    """
    global _busy_timeout_ms
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _busy_timeout_ms = round(seconds * 1000)
    if not event.contains(Engine, "connect", _on_connect):
        event.listen(Engine, "connect", _on_connect)
        event.listen(Engine, "before_cursor_execute", _on_execute, retval=True)


def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Set the busy timeout on each new SQLite connection."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute(f"PRAGMA busy_timeout = {_busy_timeout_ms}")


def _on_execute(
    conn: Any,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    """Replace the busy timeout MLflow sets at the start of each session."""
    if conn.dialect.name == "sqlite" and _BUSY_TIMEOUT_PRAGMA.match(statement):
        statement = f"PRAGMA busy_timeout = {_busy_timeout_ms}"
    return statement, parameters


class _Heartbeat:
    """While a stage runs, ask a remote store about its run every ``interval`` s.

    A training stage talks to the store only when it starts and when it logs
    its results; without this it would find out that the server died only
    after hours of training. When a check fails (after MLflow's HTTP retries)
    the stage stops with a TrackingError raised in its main thread, so that a
    training stops before it writes its outputs: ``_thread.interrupt_main``
    runs this class's SIGUSR1 handler there, without sending the process any
    signal.
    """

    def __init__(self, uri: str, run_id: str, stage: str, interval: float) -> None:
        self.uri = uri
        self.run_id = run_id
        self.stage = stage
        self.interval = interval
        self.reason: str | None = None
        self._armed = False
        self._stopped = threading.Event()

    def __enter__(self) -> _Heartbeat:
        if not self.interval or not hasattr(signal, "SIGUSR1"):
            return self
        try:
            # left installed afterwards: disarmed, it ignores a late check's call
            signal.signal(signal.SIGUSR1, self._interrupt)
        except ValueError:  # not the main thread, which is the one to stop
            return self
        self._armed = True
        threading.Thread(
            target=self._watch, name="mlflow-heartbeat", daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._armed = False
        self._stopped.set()

    def _watch(self) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.uri)
        while not self._stopped.wait(self.interval):
            try:
                client.get_run(self.run_id)
            except Exception as exc:  # any failure: the stage cannot log its results
                self.reason = _first_line(exc)
                if not self._stopped.is_set():
                    _thread.interrupt_main(signal.SIGUSR1)
                return

    def _interrupt(self, signum: int, frame: Any) -> None:
        if self._armed and self.reason is not None:
            self._armed = False
            raise TrackingError(
                f"MLflow tracking store {redact(self.uri)} stopped answering during "
                f"stage {self.stage} ({self.reason}); restart it or set "
                "MLFLOW_TRACKING_URI, then rerun `dvc repro`"
            )


def _store_lock(uri: str) -> contextlib.AbstractContextManager[Any]:
    """Serialize opening an SQLite store: parallel experiments would otherwise
    race to create its tables on first use."""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    from filelock import FileLock

    return FileLock(_sqlite_path(uri) + ".lock", timeout=300)


def _open(uri: str, params: Params, tags: dict[str, str]) -> tuple[Any, str, str, bool]:
    """The client, experiment id and top-level run id of this execution."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    given = os.environ.get("MLFLOW_RUN_ID")
    if given:
        return client, _given_parent(client, given, params, tags), given, True
    experiment_id = _experiment_id(client, params.mlflow.experiment_name, uri)
    _end_abandoned(client, experiment_id)
    return (
        client,
        experiment_id,
        _parent_run_id(client, experiment_id, params, tags),
        False,
    )


def _end_abandoned(client: Any, experiment_id: str) -> None:
    """End as FAILED the runs left RUNNING by executions on this host that are gone.

    A stage killed with SIGKILL, or one whose store was unreachable when it
    ended, cannot end its runs; the next execution that opens the store does.
    """
    host = socket.gethostname()
    found = client.search_runs(
        [experiment_id],
        filter_string=(
            f"attributes.status = 'RUNNING' and tags.`{EXECUTION_TAG}` LIKE '{host}:%'"
        ),
        max_results=100,
    )
    for parent in found:
        if _alive(parent.data.tags[EXECUTION_TAG]):
            continue
        children = client.search_runs(
            [experiment_id],
            filter_string=(
                f"attributes.status = 'RUNNING' and "
                f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
            ),
            max_results=100,
        )
        for run in [*children, parent]:
            client.set_terminated(run.info.run_id, "FAILED")
        logger.info(
            "ended MLflow run %s as FAILED: its pipeline execution %s is gone",
            parent.info.run_id,
            parent.data.tags[EXECUTION_TAG],
        )


def _alive(key: str) -> bool:
    """Whether the process an execution key names still runs (or may, elsewhere)."""
    try:
        host, pid, started = key.rsplit(":", 2)
    except ValueError:  # not written by this module: leave the run alone
        return True
    if host != socket.gethostname():
        return True
    try:
        process = psutil.Process(int(pid))
        return f"{process.create_time():.3f}" == started
    except (ValueError, psutil.NoSuchProcess):
        return False
    except psutil.AccessDenied:  # another user's process: it may be that one
        return True


def _end(client: Any, run: StageRun, status: str) -> None:
    """End the child run, and the top-level run unless ``mlflow run`` owns it."""
    try:
        client.set_terminated(run.run_id, status)
        if not os.environ.get("MLFLOW_RUN_ID"):
            client.set_terminated(run.parent_id, status)
    except Exception as exc:  # the stage's own outcome matters more than this
        logger.warning(
            "MLflow run %s left RUNNING, the next pipeline run ends it: %s",
            run.run_id,
            _first_line(exc),
        )


# the innermost error in the chain MLflow and urllib3 report for a failed request
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
# what urllib3 says when the server goes away in the middle of an answer
_LOST = ("Connection broken", "Connection aborted", "RemoteDisconnected")


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message, with any credentials in URLs removed.

    For a request that could not reach a server, just the reason, e.g.
    ``Connection refused``: the message around it repeats the URL three times.
    """
    text = str(exc).strip()
    if text.startswith("API request to "):
        if "failed with timeout exception" in text:
            return "no answer within MLFLOW_HTTP_REQUEST_TIMEOUT"
        reason = _ERRNO.search(text)
        if reason:
            return reason.group(1).strip()
        if any(word in text for word in _LOST):
            return "connection lost"
    lines = text.splitlines()
    return scrub(lines[0]) if lines else type(exc).__name__


_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def scrub(text: str) -> str:
    """``text`` with the user name and password taken out of every URL in it."""
    return _USERINFO.sub(r"\1", text)
