"""Request bodies of the API that are not the wire format's (responses are the services' own
records). What sites and pilots send (slots, claims, reports, exchanges) is validated into
the dataclasses of ``frazil.wire`` themselves."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from frazil.model.limits import PRIORITY, SEED
from frazil.model.records import SiteResources
from frazil.model.states import LOST_OUTCOMES, AttemptOutcome, TaskPhase
from frazil.wire import MAX_CHUNK, Beat, LogChunk, Slot


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # JSON has no NaN or inf


class SubmitBody(_Body):
    """A dataset to submit: its config as an object or as YAML/JSON text."""

    config: dict[str, Any] | str
    jobs: int = Field(1, ge=0)
    alias: str | None = None
    description: str | None = None
    priority: float = Field(1.0, ge=PRIORITY.low, le=PRIORITY.high)
    seed: int | None = Field(None, ge=SEED.low, le=SEED.high)
    group: str = Field("", max_length=255)
    #: seen only by its owner, its group and administrators
    private: bool = False
    #: files uploaded with the config (``PUT /blobs/{sha256}``): {relative path: sha256}
    uploads: dict[str, str] = Field(default_factory=dict)


class BlobBody(_Body):
    """A file to keep: its bytes in base64."""

    content: str


class ChecksumsBody(_Body):
    """Files named by their sha256."""

    sha256: list[str] = Field(max_length=1000)


class ScopeBody(_Body):
    """Which tasks of a dataset an action applies to."""

    job: int | None = Field(None, ge=0)
    task: str | None = None
    task_id: int | None = None
    reason: str = Field("", max_length=2000)


class PriorityBody(_Body):
    priority: float = Field(ge=PRIORITY.low, le=PRIORITY.high)


class JobsBody(_Body):
    jobs: int = Field(ge=0)


class ConfigBody(_Body):
    config: dict[str, Any] | str
    comment: str = Field("", max_length=2000)
    #: the version the edit started from: refused when another one was stored since
    base: int | None = Field(None, ge=1, le=2**31 - 1)


class QuotaBody(_Body):
    """Caps of a submitter's quota; a cap left out stays, null goes back to the default."""

    dataset_jobs: int | None = Field(None, ge=0, le=10**12)
    dataset_tasks: int | None = Field(None, ge=0, le=10**12)
    jobs: int | None = Field(None, ge=0, le=10**12)
    tasks: int | None = Field(None, ge=0, le=10**12)


class TokenBody(_Body):
    name: str
    role: str
    user: str | None = None  # the account it acts as (default: the one called ``name``)
    scope: str | None = None  # read | write | admin (default: the role's)
    expires_at: float | None = None


class UserBody(_Body):
    name: str = Field(max_length=255)
    role: str = "user"  # admin | user | readonly
    password: str | None = Field(None, max_length=1024)
    source: str = "local"  # local | ldap | oidc
    email: str | None = Field(None, max_length=255)


class LoginBody(_Body):
    user: str = Field(max_length=255)
    password: str = Field(max_length=1024)
    token_name: str | None = Field(None, max_length=100)
    scope: str | None = None  # read | write | admin (default: the user's role's)


class OwnTokenBody(_Body):
    name: str = Field(max_length=100)
    scope: str | None = None  # read | write | admin (default: the calling token's)
    expires_in: float | None = Field(None, gt=0, le=10 * 365 * 86_400)  # seconds


class DisabledBody(_Body):
    disabled: bool = True


class PasswordBody(_Body):
    password: str = Field(max_length=1024)


class GroupBody(_Body):
    name: str = Field(max_length=255)
    description: str = Field("", max_length=2000)


class MemberBody(_Body):
    write: bool = False  # may control the group's datasets


def slot(name: str, body: Slot) -> SiteResources:
    """What one of site ``name``'s slots offers, as a request states it."""
    return SiteResources(
        name=name, cpu=body.cpu, gpu=body.gpu, memory=body.memory, disk=body.disk,
        time=body.time, os=body.os, attributes=body.attributes,
    )  # fmt: skip


class BatchIdBody(_Body):
    batch_id: str = Field(min_length=1, max_length=255)


def _lost(outcome: AttemptOutcome) -> AttemptOutcome:
    if outcome not in LOST_OUTCOMES:
        named = ", ".join(sorted(o.value for o in LOST_OUTCOMES))
        raise ValueError(f"a lost attempt's outcome is one of {named}, not {outcome.value!r}")
    return outcome


class LostBody(_Body):
    reason: str = Field(max_length=10_000)
    outcome: Annotated[AttemptOutcome, AfterValidator(_lost)] = AttemptOutcome.VANISHED
    counts: bool = True


class StartBody(_Body):
    host: str = Field("", max_length=255)


class HeartbeatBody(_Body):
    phase: TaskPhase | None = None
    #: chunks of the attempt's logs (``frazil.wire.logs``), appended with the heartbeat
    logs: list[LogChunk] = Field(default_factory=list, max_length=100)


class LogBody(_Body):
    """A chunk of a log from byte ``offset`` on (``data``: base64, gzip-compressed first if
    ``gzip``; see ``frazil.wire.logs``), or, from pilots of earlier releases, the log's
    ``text`` whole (it replaces the log)."""

    text: str | None = Field(None, max_length=10_000_000)
    offset: int | None = Field(None, ge=0)
    data: str | None = Field(None, max_length=2 * MAX_CHUNK)
    gzip: bool = False

    @model_validator(mode="after")
    def _one(self) -> LogBody:
        if (self.text is None) == (self.offset is None) or (self.offset is None) != (
            self.data is None
        ):
            raise ValueError("a log body holds either text, or an offset and data")
        return self


def _phase(beat: Beat) -> Beat:
    if beat.phase is not None:
        TaskPhase(beat.phase)  # a ValueError names the phase
    return beat


class BeatsBody(_Body):
    """Heartbeats of many attempts at once (a multi-task pilot's)."""

    beats: list[Annotated[Beat, AfterValidator(_phase)]] = Field(min_length=1, max_length=1000)


class AttemptRef(_Body):
    task_id: int
    attempt: int


class AttemptsBody(_Body):
    """A site's running attempts, to learn which are no longer current."""

    attempts: list[AttemptRef] = Field(max_length=100_000)


class KnownBody(_Body):
    """The tasks a site knows among its batch jobs (by id)."""

    known: list[int] = Field(default_factory=list, max_length=100_000)


class PilotEndBody(_Body):
    reason: str = Field("done", max_length=10_000)
