"""Every error Frazil raises on purpose.

The tree::

    FrazilError
    ├── ConfigError               a dataset config was rejected; ``.problems`` lists each one
    ├── ExpressionError           a ``$`` expression could not be parsed or evaluated
    │   ├── ExpressionSyntaxError     malformed text (unbalanced parentheses, bad ``$eval``)
    │   ├── UnresolvedReference       a name that no scope defines (strict mode)
    │   ├── ExpressionCycleError      a parameter that refers back to itself; names the chain
    │   └── ExpressionLimitError      a depth, size or step bound was reached
    ├── SpecError                 a task's spec cannot be resolved for its job (located)
    │   ├── JobSpecError              whatever the site supplies: the task fails at once
    │   └── SiteSpecError             with this site's values: another site may resolve it
    ├── BudgetExceeded            validating a config took more than its budget; names it
    ├── IllegalTransition         a state change that the state tables do not allow
    ├── NotFound                  no dataset, job or task by that name or number
    ├── BadRequest                a value no state could accept (a filter by an unknown status)
    ├── Rejected                  a request the current state refuses
    │   ├── StaleAttempt              a report from an attempt that is no longer current
    │   ├── BadPasskey                a report whose passkey does not match its attempt
    │   ├── TooLarge                  a request past one of the server's caps (it names it)
    │   ├── QuotaExceeded             more jobs or tasks than a submitter's quota allows
    │   └── LogGap                    a log chunk past the log's end (names the expected offset)
    ├── StoreError                the database is unreachable, misconfigured or not migrated
    │   └── DatabaseUnavailable       it cannot be reached now (refused or lost, a timeout): retry
    ├── StatementFailed           the database refused a statement: a bug, not the caller's
    │   └── ConstraintViolated        a write broke a unique, foreign-key or not-null constraint
    ├── Unreachable               the Frazil server did not answer within the client's retry time
    ├── ProtocolMismatch          a caller and the server speak wire formats of other releases
    ├── BadValue                  a value the database cannot hold (too long, out of range, NUL)
    ├── SettingsError             Frazil's own settings cannot be read
    ├── AuthError                 a request without a valid token or passkey
    │   └── Forbidden                 a valid token that may not do this (its role or its site)
    ├── RoundFailed               a site daemon's round failed (``frazil site --once``): why
    ├── BatchError                a batch system refused or failed a request
    │   └── BatchCommandError         a batch command failed: argv, exit code, stdout, stderr
    └── TransferError             a file could not be staged in or out (or its checksum differs)

Foreign exceptions (YAML, pydantic, OS errors, the database's) are translated at the boundary
that meets them, with ``raise ... from exc``; the database's at the store (``frazil.store.db``).
"""

from __future__ import annotations

from dataclasses import dataclass


class FrazilError(Exception):
    """Base class of every error Frazil raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config, located by its path (``tasks[1].trays[0].name``)."""

    path: str
    message: str
    line: int | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = self.path or "<top>"
        if self.line is not None:
            where = f"line {self.line}: {where}"
        return f"{where}: {self.message}"


class ConfigError(FrazilError):
    """A dataset config was rejected. ``problems`` holds every error found, in order."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{head}{len(problems)} problem(s) in the dataset config\n{lines}")


class ExpressionError(FrazilError):
    """A ``$`` expression failed. Carries the text, the column and, once known, the config path."""

    def __init__(
        self,
        message: str,
        text: str = "",
        position: int | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.text = text
        self.position = position
        self.path = path
        self.via: list[str] = []
        super().__init__(self._render())

    def add_via(self, label: str) -> None:
        """Note a parameter the failing text was reached through (innermost first)."""
        self.via.append(label)
        self.args = (self._render(),)

    def describe(self) -> str:
        """The error without its config path: message, text and column."""
        return self._render(with_path=False)

    def _render(self, *, with_path: bool = True) -> str:
        parts = []
        if self.path and with_path:
            parts.append(f"{self.path}: ")
        parts.append(self.message)
        if self.text:
            shown = self.text if len(self.text) <= 200 else self.text[:197] + "..."
            parts.append(f" in {shown!r}")
            if self.position is not None:
                parts.append(f" at column {self.position + 1}")
        if self.via:
            parts.append(" (via " + " <- ".join(self.via) + ")")
        return "".join(parts)

    def at(self, path: str) -> ExpressionError:
        """Return the same error located at a config path (the first location wins)."""
        if self.path is None:
            self.path = path
            self.args = (self._render(),)
        return self


class ExpressionSyntaxError(ExpressionError):
    """The text is not a well-formed expression."""


class UnresolvedReference(ExpressionError):
    """A reference names something that no scope defines."""


class ExpressionCycleError(ExpressionError):
    """A parameter refers back to itself, directly or through others."""


class ExpressionLimitError(ExpressionError):
    """Evaluation reached a bound on depth, size or steps."""


class SpecError(FrazilError):
    """A task's spec cannot be resolved for its job; the message locates the failing value
    (config path, expression, column)."""


class JobSpecError(SpecError):
    """The spec fails for this job whatever a site supplies (an expression that fails for
    the job's own values): no site can run the task, so it fails at once, without retries."""


class SiteSpecError(SpecError):
    """The spec fails with the values of the site that asked (its ``$system()`` values): the
    task may run elsewhere, so it retries like any failure, preferring another site."""


class BudgetExceeded(FrazilError):
    """Checking a config used up its budget (CPU time or memory); names the budget and where.

    ``path`` is where in the config the check was when the budget ran out ("" for the whole
    document, e.g. while it was being read).
    """

    def __init__(self, budget: str, path: str = "", doing: str = "") -> None:
        self.budget = budget
        self.path = path
        self.doing = doing
        where = f" while {doing}" if doing else ""
        super().__init__(f"the check of this config used up its budget of {budget}{where}")


class IllegalTransition(FrazilError):
    """A state change the transition tables do not allow."""

    def __init__(self, kind: str, old: str, new: str) -> None:
        self.kind = kind
        self.old = old
        self.new = new
        super().__init__(f"illegal {kind} transition: {old} -> {new}")


class NotFound(FrazilError):
    """No dataset, job or task by that name or number."""


class BadRequest(FrazilError):
    """A request with a value that is wrong whatever the state (an unknown status to list)."""


class Rejected(FrazilError):
    """A request that the current state refuses (nothing was changed)."""


class StaleAttempt(Rejected):
    """A report from an attempt that is no longer the task's current one."""


class BadPasskey(Rejected):
    """A report whose passkey does not match its attempt."""


class TooLarge(Rejected):
    """A request past one of the server's caps; the message names the cap and its setting."""


class QuotaExceeded(Rejected):
    """A submission or set-jobs that would take a submitter past a cap of their quota."""


class LogGap(Rejected):
    """A log chunk that starts past the end of the log; the message names where it ends."""


class StoreError(FrazilError):
    """The database cannot be used (unreachable, misconfigured, or not migrated)."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached now: a refused or lost connection, a connect, statement
    or read timeout, no free pooled connection, or a lock still held after the retries. It
    may work again soon, so callers retry (the server answers 503). ``reason`` is the
    driver's own first line."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the database is unavailable: {reason}")


class StatementFailed(FrazilError):
    """The database refused a statement (one it cannot run, a constraint): a bug in Frazil
    or a race that no retry fixes, unlike ``StoreError``. ``reason``: the driver's first
    line."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the database refused a statement: {reason}")


class ConstraintViolated(StatementFailed):
    """A write broke a unique, foreign-key, not-null or check constraint (a name taken)."""


class Unreachable(FrazilError):
    """The Frazil server could not be reached (the client retried for its whole retry time)."""


class ProtocolMismatch(FrazilError):
    """A site, pilot or client and the server speak versions of the wire format that do not
    go together (the message names both, and what to upgrade)."""


class BadValue(FrazilError):
    """A value that the database cannot hold: too long, out of range, or not storable text."""


class SettingsError(FrazilError):
    """Frazil's settings file cannot be read or holds something unusable."""


class AuthError(FrazilError):
    """A request without a valid token (or passkey); ``Forbidden``: with one that may not."""


class Forbidden(AuthError):
    """A valid token that may not do this: its role is not enough, or it is another site's."""


class TooManyAttempts(AuthError):
    """Too many failed logins for a user or from an address in a while: try again later."""


class RoundFailed(FrazilError):
    """A site daemon's round failed (the server or the batch system away, the scratch
    full); ``frazil site --once`` exits with it, a running daemon retries."""


class BatchError(FrazilError):
    """A batch system refused or failed a request."""


class BatchCommandError(BatchError):
    """A batch system command failed; carries everything needed to see why."""

    def __init__(
        self, argv: list[str], returncode: int | None, stdout: str, stderr: str, reason: str = ""
    ) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        what = reason or (f"exit code {returncode}" if returncode is not None else "failed")
        tail = (stderr or stdout).strip()[-2000:]
        super().__init__(f"{' '.join(argv)}: {what}" + (f": {tail}" if tail else ""))


class TransferError(FrazilError):
    """A file could not be staged in or out, or its checksum is not the expected one."""
