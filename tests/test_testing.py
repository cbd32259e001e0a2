"""The fakes shipped for tests: FakeRunner answers like run_command and records every call."""

import pytest

from frazil.errors import BatchCommandError
from frazil.testing import FakeRunner


def test_replies_answer_in_order_then_the_default() -> None:
    runner = FakeRunner(["first\n", (3, "out", "refused\n")])
    assert runner(["qsub", "a"], timeout=5.0).stdout == "first\n"
    with pytest.raises(BatchCommandError) as caught:
        runner(["qsub", "b"], timeout=5.0, cwd="/tmp")
    assert (caught.value.argv, caught.value.returncode) == (["qsub", "b"], 3)
    assert (caught.value.stdout, caught.value.stderr) == ("out", "refused\n")
    assert runner(["qstat"], timeout=5.0).stdout == ""
    assert runner.argvs == [["qsub", "a"], ["qsub", "b"], ["qstat"]]
    assert runner.calls[1][1] == {"timeout": 5.0, "cwd": "/tmp"}


def test_answers_go_by_the_start_of_the_command_line_and_repeat() -> None:
    runner = FakeRunner(["queued\n"], answers={"squeue -h": "42|frazil-a\n"}, default=None)
    assert runner(["squeue", "-h", "-u", "me"], timeout=1.0).stdout == "42|frazil-a\n"
    assert runner(["squeue", "-h"], timeout=1.0).stdout == "42|frazil-a\n"
    assert runner(["sbatch", "x"], timeout=1.0).stdout == "queued\n"
    with pytest.raises(BatchCommandError, match="no reply for 'scancel 42'"):
        runner(["scancel", "42"], timeout=1.0)
