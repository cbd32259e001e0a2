"""Fakes of Frazil's external boundaries, for tests of code that uses them (as httpx ships
``MockTransport``). Standard library only; nothing in the package imports this module.

``FakeRunner`` stands in for ``frazil.batch.run.run_command``, the one place where batch
plugins start processes: pass it as a script plugin's ``runner=`` option and the plugin runs
no command at all. It records every call and answers from scripted replies::

    runner = FakeRunner(["42;cluster\\n"], answers={"squeue": "42|frazil-a\\n"})
    plugin = SlurmPlugin(runner=runner)
    assert plugin.submit([request]) == ["42"]
    assert runner.argvs[0][0] == "sbatch"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from frazil.batch.run import CommandResult
from frazil.errors import BatchCommandError

#: What a fake command answers: its stdout (exit status 0), or ``(returncode, stdout,
#: stderr)`` for a command that fails, which raises ``BatchCommandError`` as ``run_command`` does.
Reply = str | tuple[int, str, str]


class FakeRunner:
    """A ``run_command`` that runs nothing: records each call, answers from a script.

    A call is answered by the first entry of ``answers`` whose key starts the command line
    (the argv joined by blanks; it answers every such call), else by the next of ``replies``
    (each answers once, in order), else by ``default``: an empty stdout, or, if ``default``
    is ``None``, a failure that names the unexpected command.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        answers: Mapping[str, Reply] | None = None,
        default: Reply | None = "",
    ) -> None:
        self.replies: list[Reply] = list(replies)
        self.answers: dict[str, Reply] = dict(answers or {})
        self.default = default
        #: every call so far: its argv and its keyword arguments (``timeout``, ``cwd``, ...)
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> CommandResult:
        args = [str(a) for a in argv]
        self.calls.append((args, kwargs))
        return _result(args, self._reply(" ".join(args)))

    def _reply(self, line: str) -> Reply:
        for prefix, reply in self.answers.items():
            if line.startswith(prefix):
                return reply
        if self.replies:
            return self.replies.pop(0)
        if self.default is None:
            return (127, "", f"FakeRunner: no reply for {line!r}")
        return self.default

    @property
    def argvs(self) -> list[list[str]]:
        """The argv of every call so far, in order."""
        return [argv for argv, _ in self.calls]


def _result(argv: list[str], reply: Reply) -> CommandResult:
    if isinstance(reply, tuple):
        returncode, stdout, stderr = reply
        raise BatchCommandError(argv, returncode, stdout, stderr)
    return CommandResult(argv, 0, reply, "", 0.0)
