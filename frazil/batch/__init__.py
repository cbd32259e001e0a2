"""Batch-system plugins: the interface in ``base``, the one subprocess choke point in ``run``.

The script-based schedulers (Slurm, Grid Engine, PBS, LSF, HTCondor) share ``script``'s
``ScriptPlugin``; their tests run no command, through ``frazil.testing.FakeRunner``. Plugins
register under the entry-point group ``frazil.batch`` and are built with
``load_plugin(name, **options)``. This package imports nothing of Frazil but ``frazil.errors``.
"""

from frazil.batch.base import (
    ENDED_STATES,
    BatchPlugin,
    BatchState,
    BatchStatus,
    JobRequest,
    available_plugins,
    load_plugin,
    native_state,
)
from frazil.batch.run import CommandResult, run_command

__all__ = [
    "ENDED_STATES",
    "BatchPlugin",
    "BatchState",
    "BatchStatus",
    "CommandResult",
    "JobRequest",
    "available_plugins",
    "load_plugin",
    "native_state",
    "run_command",
]
