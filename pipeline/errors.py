"""Errors a user can fix, each shown as one line with a distinct exit code."""


class PipelineError(Exception):
    """A problem with the user's input that the user can fix.

    The message is shown on one line, without a traceback, and names the key,
    file or URI involved and what to do about it.
    """

    exit_code = 1


class ConfigError(PipelineError):
    """A value in ``params.yaml`` or ``conf/`` is missing, unknown or invalid."""

    exit_code = 2


class DataError(PipelineError):
    """An input file is missing, unreadable or holds unusable data."""


class TrackingError(PipelineError):
    """The MLflow tracking store cannot be reached or written."""


class Interrupted(PipelineError):
    """SIGTERM arrived: the stage stops cleanly and exits 143."""

    exit_code = 143
