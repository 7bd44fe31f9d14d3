"""Load against a real `mlflow server`: the tests of test_load.py, whose sweep
logs to SQLite, on a sweep that logs to the session's server instead.
"""

from __future__ import annotations

import pytest

from tests.conftest import MlflowServer
from tests.test_load import (  # noqa: F401  (collected here, with this swept)
    Sweep,
    sweep_server,
    test_every_metric_of_every_experiment_reaches_the_store,
    test_plots_diff_renders_two_experiments,
    test_queue_runs_every_experiment_successfully,
    test_stages_log_only_to_the_chosen_store,
    test_store_database_passes_integrity_check,
    test_store_holds_one_finished_run_per_experiment,
    test_store_registers_one_model_version_per_experiment,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swept(
    tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer
) -> Sweep:
    return sweep_server(tmp_path_factory.mktemp("load-server"), mlflow_server)
