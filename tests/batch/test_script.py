"""ScriptPlugin, the shared base: what every script plugin does the same way, checked on all
five through the fake runner, and on a scheduler added as a subclass of a few lines."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from frazil.batch.base import BatchState, JobRequest
from frazil.batch.htcondor import HTCondorPlugin
from frazil.batch.lsf import LsfPlugin
from frazil.batch.pbs import PbsPlugin
from frazil.batch.script import ScriptPlugin, command_table, job_name
from frazil.batch.sge import SgePlugin
from frazil.batch.slurm import SlurmPlugin
from frazil.errors import BatchCommandError, BatchError
from frazil.testing import FakeRunner


class MoabPlugin(PbsPlugin):
    """Moab over Torque: ``msub`` submits and ``canceljob`` cancels; ``qstat`` answers."""

    name = "moab"
    default_commands = command_table(PbsPlugin.default_commands, qsub="msub", qdel="canceljob")


#: each plugin, its submit command, what that prints for job 4242, the argv that cancels it
PLUGINS = {
    "slurm": (SlurmPlugin, "sbatch", "4242;cluster\n", ["scancel", "4242"]),
    "sge": (SgePlugin, "qsub", "4242\n", ["qdel", "4242"]),
    "pbs": (PbsPlugin, "qsub", "4242.server\n", ["qdel", "4242.server"]),
    "lsf": (LsfPlugin, "bsub", "Job <4242> is submitted to queue <normal>.\n", ["bkill", "4242"]),
    "htcondor": (HTCondorPlugin, "condor_submit", "4242.0 - 4242.0\n", ["condor_rm", "4242"]),
    "moab": (MoabPlugin, "msub", "4242.moab\n", ["canceljob", "4242.moab"]),
}
every_plugin = pytest.mark.parametrize("system", list(PLUGINS))


def request(tmp_path: Path, name: str = "pilot-7") -> JobRequest:
    workdir = tmp_path / name
    return JobRequest(
        name=name, argv=["/bin/echo", "hi"], workdir=workdir, stdout=workdir / "out",
        stderr=workdir / "err", cpu=2, memory=2.0, walltime=1.5, env={"TOKEN": "secret"},
    )  # fmt: skip


def test_a_new_scheduler_is_a_small_subclass(tmp_path: Path) -> None:
    assert len(inspect.getsource(MoabPlugin).splitlines()) <= 6
    runner = FakeRunner(["4242.moab\n", (1, "", "qstat: Unknown Job Id 4242.moab\n"), ""])
    plugin = MoabPlugin(flavor="torque", runner=runner)
    script = request(tmp_path).workdir / "pilot-7.pbs"
    assert plugin.submit([request(tmp_path)]) == ["4242.moab"]
    assert "#PBS -N frazil-pilot-7" in script.read_text()  # PBS's own script
    assert plugin.status(["4242.moab"])["4242.moab"].state is BatchState.VANISHED
    plugin.cancel(["4242.moab"])
    assert runner.argvs == [
        ["msub", str(script)],
        ["qstat", "-f", "4242.moab"],
        ["canceljob", "4242.moab"],
    ]
    site = MoabPlugin(qsub="/opt/moab/bin/msub", runner=FakeRunner())
    assert site.commands["qsub"] == "/opt/moab/bin/msub"  # the site's path wins


@every_plugin
def test_a_failed_submission_cancels_the_ones_before_it(tmp_path: Path, system: str) -> None:
    cls, submit, printed, cancel = PLUGINS[system]
    runner = FakeRunner([printed, (1, "", "the queue is full\n")])
    first, second, third = (request(tmp_path / n) for n in "abc")
    with pytest.raises(BatchCommandError, match="the queue is full"):
        cls(runner=runner).submit([first, second, third])
    assert [argv[0] for argv in runner.argvs] == [submit, submit, cancel[0]]  # not the third
    assert runner.argvs[-1] == cancel
    assert (third.workdir / f"pilot-7{cls.script_suffix}").is_file()  # all written first


@every_plugin
def test_an_unlisted_job_is_unknown_for_the_grace_then_vanished(system: str) -> None:
    cls = PLUGINS[system][0]
    now = [0.0]
    plugin = cls(runner=FakeRunner(), vanish_after=60.0, clock=lambda: now[0])
    seen = []
    for t in (0.0, 59.0, 60.0, 600.0):
        now[0] = t
        status = plugin.status(["4242"])["4242"]
        assert status.id == "4242"
        seen.append(status.state)
    assert seen == [BatchState.UNKNOWN] * 2 + [BatchState.VANISHED] * 2  # never COMPLETED
    assert cls(runner=FakeRunner(), vanish_after=0).status(["4243"])["4243"].state is (
        BatchState.VANISHED
    )
    assert plugin.status([]) == {}


def test_the_grace_starts_again_for_a_job_that_was_listed_in_between() -> None:
    now = [0.0]
    runner = FakeRunner(answers={"scontrol": "", "sacct": ""})
    plugin = SlurmPlugin(runner=runner, vanish_after=60.0, clock=lambda: now[0])
    assert plugin.status(["5"])["5"].state is BatchState.UNKNOWN
    now[0] = 50.0
    runner.answers["scontrol"] = "JobId=5 JobState=RUNNING ExitCode=0:0\n"
    assert plugin.status(["5"])["5"].state is BatchState.RUNNING
    runner.answers["scontrol"] = ""
    now[0] = 70.0
    assert plugin.status(["5"])["5"].state is BatchState.UNKNOWN  # missing for 0 s, not 70


@every_plugin
def test_scripts_go_into_the_workdir_readable_by_their_owner_only(
    tmp_path: Path, system: str
) -> None:
    cls = PLUGINS[system][0]
    req = request(tmp_path)
    path = cls(runner=FakeRunner()).write_script(req)
    assert path == req.workdir / f"pilot-7{cls.script_suffix}"
    assert path.stat().st_mode & 0o777 == 0o700  # it holds the job's environment
    assert "secret" in path.read_text()


@every_plugin
def test_the_common_options_are_checked_and_the_constructor_runs_nothing(system: str) -> None:
    cls = PLUGINS[system][0]

    def no_commands(argv, **_):
        raise AssertionError(f"the constructor ran {argv}")

    plugin = cls(runner=no_commands, timeout=5.0, vanish_after=1.0, skip=["#x"], extra=["y"])
    assert (plugin.timeout, plugin.vanish_after) == (5.0, 1.0)
    for bad in ({"timeout": 0}, {"vanish_after": -1}, {"skip": [""]}, {"extra": ["a\nb"]}):
        with pytest.raises(BatchError):
            cls(**bad)
    with pytest.raises(BatchError, match="no variant"):
        cls(variant="turbo")


def test_every_job_is_named_with_the_prefix_once(tmp_path: Path) -> None:
    assert job_name(request(tmp_path, "pilot-7")) == "frazil-pilot-7"
    assert job_name(request(tmp_path, "frazil-pilot-7")) == "frazil-pilot-7"
    assert issubclass(MoabPlugin, ScriptPlugin)
