"""The shared vocabulary and the plugin registry."""

from __future__ import annotations

import logging
import pickle
import uuid
from pathlib import Path
from typing import Any

import pytest

from frazil.batch import (
    ENDED_STATES,
    BatchState,
    JobRequest,
    available_plugins,
    load_plugin,
    native_state,
)
from frazil.batch.local import LocalPlugin
from frazil.errors import BatchError


def test_every_state_is_documented() -> None:
    for state in BatchState:
        assert state.__doc__ and state.__doc__ != BatchState.__doc__, state
        assert state.value == state.name.lower()
    assert BatchState("timeout") is BatchState.TIMEOUT


def test_ended_states_are_the_ones_that_never_run_again() -> None:
    assert BatchState.TIMEOUT in ENDED_STATES
    assert BatchState.VANISHED in ENDED_STATES
    for state in (BatchState.PENDING, BatchState.RUNNING, BatchState.HELD, BatchState.UNKNOWN):
        assert state not in ENDED_STATES


def test_native_state_warns_once_per_unknown_code(caplog: pytest.LogCaptureFixture) -> None:
    table = {"R": BatchState.RUNNING}
    odd, other = f"ODD{uuid.uuid4().hex}", f"OTHER{uuid.uuid4().hex}"
    with caplog.at_level(logging.WARNING, logger="frazil.batch.base"):
        assert native_state("test", table, "R") is BatchState.RUNNING
        assert native_state("test", table, odd) is BatchState.UNKNOWN
        assert native_state("test", table, odd) is BatchState.UNKNOWN
        assert native_state("test", table, other) is BatchState.UNKNOWN
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert odd in warned[0] and other in warned[1]


def _request(**fields: Any) -> JobRequest:
    base: dict[str, Any] = {
        "name": "job-1",
        "argv": ["pilot", "--x"],
        "workdir": "/tmp/w",
        "stdout": "/tmp/w/out",
        "stderr": "/tmp/w/err",
    }
    return JobRequest(**{**base, **fields})


def test_job_request_freezes_and_normalizes_its_inputs() -> None:
    argv, env = ["pilot"], {"A": "1"}
    request = _request(argv=argv, env=env, walltime=0.5)
    argv.append("later")
    env["B"] = "2"
    assert request.argv == ("pilot",)
    assert dict(request.env) == {"A": "1"}
    with pytest.raises(TypeError):
        request.env["C"] = "3"  # type: ignore[index]
    assert request.workdir == Path("/tmp/w")
    assert request.walltime_seconds == 1800.0
    assert pickle.loads(pickle.dumps(request)) == request


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "has space"},
        {"name": "../escape"},
        {"name": ""},
        {"argv": []},
        {"cpu": 0},
        {"gpu": -1},
        {"memory": 0},
        {"walltime": 0},
        {"env": {"NOT-A-NAME": "x"}},
        {"extra": ("#SBATCH --a\n#SBATCH --b",)},
    ],
)
def test_job_request_rejects_bad_values(fields: dict[str, Any]) -> None:
    with pytest.raises(BatchError, match="bad job request"):
        _request(**fields)


def test_load_plugin_builds_local_through_its_entry_point(tmp_path: Path) -> None:
    assert "local" in available_plugins()
    plugin = load_plugin("local", state_dir=tmp_path / "state", cpus=3, gpus=1)
    assert isinstance(plugin, LocalPlugin)
    assert (plugin.name, plugin.cpus, plugin.gpus) == ("local", 3, 1)
    assert not (tmp_path / "state").exists()  # constructors do no I/O


def test_load_plugin_names_the_known_plugins_for_an_unknown_name() -> None:
    with pytest.raises(BatchError, match="local") as info:
        load_plugin("nope")
    assert "nope" in str(info.value)


def test_load_plugin_passes_the_variant_and_local_refuses_it(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match=r"no variants.*'dag'"):
        load_plugin("local::dag", state_dir=tmp_path)
    with pytest.raises(BatchError, match="empty variant"):
        load_plugin("local::", state_dir=tmp_path)


def test_load_plugin_translates_bad_options(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="bad options"):
        load_plugin("local", state_dir=tmp_path, queue="short")
    with pytest.raises(BatchError, match="bad options"):
        load_plugin("local")  # state_dir is required
