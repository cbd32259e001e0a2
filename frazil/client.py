"""The typed HTTP client that the CLI, the site daemon and the pilot share.

Standard library and httpx only, so that a pilot can use it on a worker node. Everything
that crosses the wire comes and goes as the dataclasses of ``frazil.wire`` (only a stored
config, the user's own document, stays plain data). Errors come
back as Frazil's own exceptions (``NotFound``, ``Rejected``, ``StaleAttempt``,
``BadPasskey``, ``AuthError``, ``ConfigError`` with its problems, ``ProtocolMismatch``);
a server that cannot be reached raises ``Unreachable``. Connection failures and
502/503/504 answers are retried with a growing pause until ``retry_for`` seconds have
passed, so a server restart is ridden out.

Every request names the wire format's version (``Frazil-Protocol``); a server older than
this client is refused at the first answer, naming both versions.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Self, TypeVar

import httpx

from frazil import errors
from frazil.errors import (
    AuthError,
    BadPasskey,
    ConfigError,
    FrazilError,
    Problem,
    ProtocolMismatch,
    Unreachable,
)
from frazil.wire import (
    ATTEMPT_HEADER,
    PROTOCOL,
    PROTOCOL_HEADER,
    TOTAL_HEADER,
    AttemptKey,
    Beat,
    BlobLimits,
    BlobStored,
    Caller,
    Claim,
    ClaimRequest,
    ConfigEdited,
    ConfigVersion,
    DatasetDeleted,
    DatasetStatusView,
    DatasetView,
    EventView,
    ExchangeAnswer,
    Failure,
    Finish,
    GroupView,
    Health,
    JobClaim,
    JobsSet,
    JobView,
    LogAck,
    LogChunk,
    LogPart,
    LogView,
    NewPilot,
    NewToken,
    Page,
    Permissions,
    PilotView,
    Quota,
    Report,
    SiteInfo,
    SiteStatus,
    SiteView,
    Slot,
    StatSummary,
    Submitted,
    TaskDetail,
    TaskSpec,
    TaskView,
    TokenRecord,
    UserView,
    WireError,
    decode,
    encode,
    slot_fields,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

_ERRORS: dict[str, type[FrazilError]] = {
    cls.__name__: cls
    for cls in (
        errors.NotFound,
        errors.BadRequest,
        errors.Rejected,
        errors.StaleAttempt,
        errors.BadPasskey,
        errors.TooLarge,
        errors.QuotaExceeded,
        errors.LogGap,
        errors.AuthError,
        errors.Forbidden,
        errors.TooManyAttempts,
        errors.IllegalTransition,
        errors.ExpressionError,
        errors.StoreError,
        errors.JobSpecError,
        errors.SiteSpecError,
        ProtocolMismatch,
    )
}
_RETRY_STATUS = {502, 503, 504}


class ServerError(FrazilError):
    """The server answered with something Frazil does not know how to read."""


def request_id() -> str:
    """A fresh id for a claim or an exchange: sent again with its retries, so that a request
    whose answer was lost gets the same tasks back (their passkeys derive from it)."""
    return secrets.token_urlsafe(32)


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    name = body.get("error", "") if isinstance(body, dict) else ""
    detail = body.get("detail", response.text[:500]) if isinstance(body, dict) else response.text
    if name == "ConfigError":
        problems = [Problem(**p) for p in body.get("problems", [])]
        raise ConfigError(problems, "<submitted config>")
    if name == "IllegalTransition":
        raise errors.Rejected(str(detail))
    cls = _ERRORS.get(name)
    if cls is errors.ExpressionError:
        raise errors.ExpressionError(str(detail))
    if cls is not None:
        raise cls(str(detail))
    if response.status_code in (401, 403):
        raise AuthError(str(detail))
    raise ServerError(f"HTTP {response.status_code} from {response.request.url}: {detail}")


def _check_protocol(response: httpx.Response, url: str) -> None:
    """A server older than this client cannot read what it sends: say so, naming both."""
    theirs = response.headers.get(PROTOCOL_HEADER)
    if theirs is None or not theirs.isdigit() or int(theirs) >= PROTOCOL:
        return
    raise ProtocolMismatch(
        f"the server at {url} speaks Frazil protocol {theirs}, this client speaks {PROTOCOL}: "
        "upgrade the server, or use a site, pilot and client of the server's release"
    )


def _decoded(shape: type[T], data: Any, what: str) -> T:
    try:
        return decode(shape, data)
    except WireError as exc:
        raise ServerError(f"{what}: the server's answer does not fit: {exc}") from exc


def _each(shape: type[T], data: Any, what: str) -> list[T]:
    return [_decoded(shape, item, what) for item in data]


def _detail(response: httpx.Response) -> str:
    """What an error answer says, briefly."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail)[:200] if detail else response.reason_phrase


def log_in(
    url: str, user: str, password: str, *, token_name: str | None = None,
    scope: str | None = None, retry_for: float = 60.0,
) -> NewToken:  # fmt: skip
    """A new token for ``user`` from their name and password (``POST /login``, no token
    needed); ``AuthError`` for a wrong name or password, ``TooManyAttempts`` after too many."""
    body = {"user": user, "password": password, "token_name": token_name, "scope": scope}
    with _Base(url, "", retry_for=retry_for) as anonymous:
        return _decoded(NewToken, anonymous.request("POST", "/login", json=body), "a new token")


class _Base:
    def __init__(
        self,
        url: str,
        auth: str,
        *,
        timeout: float = 60.0,
        retry_for: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry_for = retry_for
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": auth, "User-Agent": "frazil", PROTOCOL_HEADER: str(PROTOCOL)},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """One call, retried on connection failures and unavailable servers; its JSON."""
        response = self.send(method, path, json=json, params=params)
        return response.json() if response.content else None

    def send(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
        keep: Callable[[httpx.Response], bool] | None = None,
        headers: Mapping[str, str] | None = None, accept: Collection[int] = (),
    ) -> httpx.Response:  # fmt: skip
        """One call, retried on connection failures and unavailable servers; its answer.
        An answer that ``keep`` accepts is returned as it is, neither retried nor raised;
        statuses in ``accept`` are answers too, not errors. The first retry of a call is a
        warning in the log, the others are detail (DEBUG)."""
        deadline = time.monotonic() + self.retry_for
        pause = 0.2
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        say = log.warning
        while True:
            try:
                response = self._http.request(
                    method, path, json=json, params=clean, headers=headers
                )
            except httpx.TransportError as exc:
                if time.monotonic() + pause > deadline:
                    raise Unreachable(
                        f"cannot reach the Frazil server at {self.url}: {exc}"
                    ) from exc
                say("server unreachable (%s); retrying in %.1f s", exc, pause)
            else:
                if keep is not None and keep(response):
                    _check_protocol(response, self.url)
                    return response
                if response.status_code not in _RETRY_STATUS or time.monotonic() + pause > deadline:
                    _check_protocol(response, self.url)
                    if response.status_code not in accept:
                        _raise_for(response)
                    return response
                say(
                    "server answered %d (%s); retrying in %.1f s",
                    response.status_code, _detail(response), pause,
                )  # fmt: skip
            say = log.debug
            time.sleep(pause)
            pause = min(pause * 2, 10.0)


class Client(_Base):
    """What users, administrators and sites call, with a bearer token."""

    def __init__(self, url: str, token: str, **options: Any) -> None:
        super().__init__(url, f"Bearer {token}", **options)

    # -- datasets ---------------------------------------------------------------------------

    def submit(self, config: Mapping[str, Any] | str, *, jobs: int = 1, **options: Any) -> int:
        """Submit a dataset (config as data or YAML/JSON text); returns its id."""
        return self.submit_dataset(config, jobs=jobs, **options).id

    def submit_dataset(
        self, config: Mapping[str, Any] | str, *, jobs: int = 1, **options: Any
    ) -> Submitted:
        """Submit a dataset (``alias``, ``description``, ``priority``, ``seed``, ``group``,
        ``private``, ``uploads``: {relative path: sha256} of files uploaded with ``put_blob``).

        The server checks the config first: every job, or, when the time for that does not
        allow it, the first, the last and a random sample (the answer says which)."""
        body = {"config": config, "jobs": jobs, **options}
        return _decoded(Submitted, self.request("POST", "/datasets", json=body), "a submission")

    def datasets(self, status: str | None = None) -> list[DatasetView]:
        """Every dataset."""
        result = self.request("GET", "/datasets", params={"status": status})
        return _each(DatasetView, result, "a dataset")

    def dataset(self, ref: int | str, *, breakdown: bool = False) -> DatasetStatusView:
        """A dataset with its task counts (``breakdown``: per site, and per phase too)."""
        params = {"breakdown": "true"} if breakdown else None
        result = self.request("GET", f"/datasets/{ref}", params=params)
        return _decoded(DatasetStatusView, result, "a dataset")

    def config(self, ref: int | str, version: int | None = None) -> dict[str, Any]:
        """A version of a dataset's config."""
        result: dict[str, Any] = self.request(
            "GET", f"/datasets/{ref}/config", params={"version": version}
        )
        return result

    def act(self, ref: int | str, action: str, **scope: Any) -> int:
        """suspend, resume, reset or hard-reset (``job=``, ``task=``, ``task_id=``, ``reason=``)."""
        return int(self.request("POST", f"/datasets/{ref}/actions/{action}", json=scope)["count"])

    def set_priority(self, ref: int | str, priority: float) -> None:
        """Change a dataset's priority."""
        self.request("PUT", f"/datasets/{ref}/priority", json={"priority": priority})

    def set_jobs(self, ref: int | str, jobs: int) -> JobsSet:
        """Raise a dataset's number of jobs (the new ones are checked first)."""
        result = self.request("PUT", f"/datasets/{ref}/jobs", json={"jobs": jobs})
        return _decoded(JobsSet, result, "a change of jobs")

    def truncate(self, ref: int | str) -> None:
        """Make no more jobs for a dataset."""
        self.request("POST", f"/datasets/{ref}/truncate")

    def jobs(self, ref: int | str, **filters: Any) -> list[JobView]:
        """A dataset's jobs (``status``, ``limit``, ``offset``)."""
        return self.jobs_page(ref, **filters).items

    def jobs_page(self, ref: int | str, **filters: Any) -> Page[JobView]:
        """A page of a dataset's jobs, and how many there are in all."""
        return self._page(JobView, f"/datasets/{ref}/jobs", filters, "a job")

    def tasks(self, ref: int | str, **filters: Any) -> list[TaskView]:
        """A dataset's tasks (``status``, ``job``, ``name``, ``limit``, ``offset``)."""
        return self.tasks_page(ref, **filters).items

    def tasks_page(self, ref: int | str, **filters: Any) -> Page[TaskView]:
        """A page of a dataset's tasks, and how many match in all."""
        return self._page(TaskView, f"/datasets/{ref}/tasks", filters, "a task")

    def _page(self, shape: type[T], path: str, params: Mapping[str, Any], what: str) -> Page[T]:
        response = self.send("GET", path, params=params)
        total = response.headers.get(TOTAL_HEADER, "-1")
        items = _each(shape, response.json(), what)
        return Page(items, int(total) if total.lstrip("-").isdigit() else -1)

    def stats(
        self, ref: int | str, task: str | None = None, *, limit: int | None = None,
        after: str | None = None,
    ) -> list[StatSummary]:  # fmt: skip
        """A page of a dataset's statistics: up to ``limit`` names (100 by default) after
        the name ``after``, each overall (``*``) and per task name."""
        result = self.request(
            "GET", f"/datasets/{ref}/stats",
            params={"task": task, "limit": limit, "after": after},
        )  # fmt: skip
        return _each(StatSummary, result, "a statistic")

    def task(self, task_id: int) -> TaskDetail:
        """A task with its attempts."""
        return _decoded(TaskDetail, self.request("GET", f"/tasks/{task_id}"), "a task")

    def logs(self, task_id: int, attempt: int | None = None) -> list[LogView]:
        """A task's logs."""
        result = self.request("GET", f"/tasks/{task_id}/logs", params={"attempt": attempt})
        return _each(LogView, result, "a log")

    def events(self, dataset: int | str | None = None, **filters: Any) -> list[EventView]:
        """The audit trail, newest first (``kind``, ``since``, ``limit``, ``offset``)."""
        return self.events_page(dataset, **filters).items

    def events_page(self, dataset: int | str | None = None, **filters: Any) -> Page[EventView]:
        """A page of the audit trail (of one dataset; of one ``kind``, the event's action;
        from ``since``, a Unix time, on), and how many entries match in all."""
        return self._page(EventView, "/events", {"dataset": dataset, **filters}, "an event")

    def edit_config(
        self, ref: int | str, text: str, comment: str = "", *, base: int | None = None
    ) -> ConfigEdited:
        """Store a new version of a dataset's config (YAML or JSON text), checked first;
        ``base``: the version the edit started from (refused if another was stored since)."""
        body = {"config": text, "comment": comment, "base": base}
        result = self.request("PUT", f"/datasets/{ref}/config", json=body)
        return _decoded(ConfigEdited, result, "a config edit")

    def config_versions(self, ref: int | str) -> list[ConfigVersion]:
        """Every version of a dataset's config, oldest first."""
        result = self.request("GET", f"/datasets/{ref}/config/versions")
        return _each(ConfigVersion, result, "a config version")

    def delete_dataset(self, ref: int | str, reason: str = "") -> DatasetDeleted:
        """Delete a dataset and everything of its own (its owner or an administrator)."""
        result = self.request("DELETE", f"/datasets/{ref}", params={"reason": reason or None})
        return _decoded(DatasetDeleted, result, "a deletion")

    # -- files uploaded with configs ------------------------------------------------------

    def blob_limits(self) -> BlobLimits:
        """How large one uploaded file, and one submission's files together, may be."""
        return _decoded(BlobLimits, self.request("GET", "/blobs"), "the upload limits")

    def missing_blobs(self, checksums: Sequence[str]) -> list[str]:
        """Which of these files (by sha256) the server does not keep yet."""
        result = self.request("POST", "/blobs/missing", json={"sha256": list(checksums)})
        return [str(sha) for sha in result["missing"]]

    def put_blob(self, sha256: str, content: bytes) -> BlobStored:
        """Upload a file under its sha256 (the server checks it); idempotent."""
        body = {"content": base64.b64encode(content).decode("ascii")}
        return _decoded(BlobStored, self.request("PUT", f"/blobs/{sha256}", json=body), "a blob")

    def blob(self, sha256: str) -> bytes:
        """An uploaded file's bytes."""
        return self.send("GET", f"/blobs/{sha256}").content

    def log_part(
        self, task_id: int, name: str, *, attempt: int | None = None, start: int = 0
    ) -> LogPart:
        """A log of the task's attempt (default: its newest) from byte ``start`` on (empty
        when it holds no more)."""
        response = self.send(
            "GET", f"/tasks/{task_id}/logs/{name}", params={"attempt": attempt},
            headers={"Range": f"bytes={start}-"} if start else None, accept=(416,),
        )  # fmt: skip
        number = int(response.headers.get(ATTEMPT_HEADER, "0") or 0)
        if response.status_code == 416:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            return LogPart(number, name, start, int(total) if total.isdigit() else start, b"")
        if response.status_code == 206:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            if not total.isdigit():
                raise ServerError(f"a log's part without its size: {response.headers}")
            return LogPart(number, name, start, int(total), response.content)
        return LogPart(number, name, 0, len(response.content), response.content)

    # -- sites ------------------------------------------------------------------------------

    def register_site(self, name: str, site: SiteInfo) -> SiteView:
        """Register a site: what its slots offer, its ``$system()`` values and about itself."""
        result = self.request("PUT", f"/sites/{name}", json=encode(site))
        return _decoded(SiteView, result, "a site")

    def site_heartbeat(self, name: str) -> None:
        """The site's daemon is alive."""
        self.request("POST", f"/sites/{name}/heartbeat")

    def claim(
        self, site: str, slot: Slot, limit: int, *, request: str | None = None
    ) -> list[Claim]:
        """Claim up to ``limit`` tasks that fit one slot of the site.

        ``request`` (default: a fresh ``request_id()``) names the claim: sent again, by the
        retries here or by the caller after a failure, it gets the same tasks.
        """
        body = _claim_body(slot, limit, request or request_id())
        result = self.request("POST", f"/sites/{site}/claim", json=body)
        return [_decoded(Claim, c, "a claim") for c in result]

    def claim_jobs(self, site: str, slot: Slot, limit: int) -> list[JobClaim]:
        """Claim up to ``limit`` whole jobs (batch-side DAGs) that fit one slot of the site."""
        result = self.request(
            "POST", f"/sites/{site}/claim-jobs", json=_claim_body(slot, limit, None)
        )
        return [_decoded(JobClaim, j, "a job claim") for j in result]

    def record_batch_id(self, site: str, task_id: int, attempt: int, batch_id: str) -> None:
        """Tell the server which batch job runs an attempt."""
        self.request(
            "POST", f"/sites/{site}/tasks/{task_id}/attempts/{attempt}/batch",
            json={"batch_id": batch_id},
        )  # fmt: skip

    def lost(
        self, site: str, task_id: int, attempt: int, reason: str, outcome: str = "vanished",
        *, counts: bool = True,
    ) -> str | None:  # fmt: skip
        """An attempt's batch job ended without its pilot's report; returns the task's state."""
        result = self.request(
            "POST", f"/sites/{site}/tasks/{task_id}/attempts/{attempt}/lost",
            json={"reason": reason, "outcome": outcome, "counts": counts},
        )  # fmt: skip
        status: str | None = result["status"]
        return status

    def stale_attempts(self, site: str, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """Which of the site's (task, attempt) pairs are no longer current."""
        body = {"attempts": [{"task_id": t, "attempt": a} for t, a in pairs]}
        result = self.request("POST", f"/sites/{site}/attempts/stale", json=body)
        return [(int(t), int(a)) for t, a in result["stale"]]

    def unsubmitted(self, site: str, known: Sequence[int]) -> list[tuple[int, int]]:
        """The (task, attempt) pairs the site claimed, no pilot started, and the site does not
        know among ``known`` (task ids of its batch jobs)."""
        result = self.request(
            "POST", f"/sites/{site}/attempts/unsubmitted", json={"known": list(known)}
        )
        return [(int(t), int(a)) for t, a in result["unsubmitted"]]

    def create_pilot(self, site: str, slot: Slot) -> NewPilot:
        """A new multi-task pilot of the site, whose batch job offers ``slot``: its id and key."""
        result = self.request("POST", f"/sites/{site}/pilots", json=encode(slot.slot()))
        return _decoded(NewPilot, result, "a new pilot")

    def record_pilot_batch_id(self, site: str, pilot_id: int, batch_id: str) -> None:
        """Tell the server which batch job runs a pilot."""
        self.request("POST", f"/sites/{site}/pilots/{pilot_id}/batch", json={"batch_id": batch_id})

    def pilot_ended(
        self, site: str, pilot_id: int, reason: str, outcome: str = "vanished",
        *, counts: bool = True,
    ) -> int:  # fmt: skip
        """A pilot's batch job ended; returns how many of its tasks were reset."""
        result = self.request(
            "POST", f"/sites/{site}/pilots/{pilot_id}/ended",
            json={"reason": reason, "outcome": outcome, "counts": counts},
        )  # fmt: skip
        return int(result["ended"])

    def demand(self, site: str, slot: Slot, limit: int) -> int:
        """How many waiting tasks (up to ``limit``) fit one of the site's pilots."""
        result = self.request("POST", f"/sites/{site}/demand", json=_claim_body(slot, limit, None))
        return int(result["waiting"])

    def site_statuses(self) -> list[SiteStatus]:
        """Every registered site with its last contact, what one slot offers, its tasks
        running and queued, and its attempts that failed in the last hour."""
        return _each(SiteStatus, self.request("GET", "/sites/status"), "a site's status")

    def pilots(self, site: str | None = None, **filters: Any) -> list[PilotView]:
        """Multi-task pilots, newest first (``open_only``, ``limit``, ``offset``)."""
        return self.pilots_page(site, **filters).items

    def pilots_page(self, site: str | None = None, **filters: Any) -> Page[PilotView]:
        """A page of multi-task pilots (of one site), and how many match in all."""
        return self._page(PilotView, "/pilots", {"site": site, **filters}, "a pilot")

    # -- administration -----------------------------------------------------------------------

    def create_token(self, name: str, role: str) -> NewToken:
        """A new token (shown once)."""
        result = self.request("POST", "/tokens", json={"name": name, "role": role})
        return _decoded(NewToken, result, "a new token")

    def quotas(self) -> list[Quota]:
        """Every submitter with caps of their own (administrators)."""
        return _each(Quota, self.request("GET", "/quotas"), "a quota")

    def clear_quota(self, submitter: str) -> Quota:
        """Give a submitter the default caps again (administrators)."""
        return _decoded(Quota, self.request("DELETE", f"/quotas/{submitter}"), "a quota")

    def quota(self, submitter: str) -> Quota:
        """A submitter's caps and what they hold (administrators)."""
        return _decoded(Quota, self.request("GET", f"/quotas/{submitter}"), "a quota")

    def set_quota(self, submitter: str, **caps: int | None) -> Quota:
        """Set some caps of a submitter (``dataset_jobs``, ``dataset_tasks``, ``jobs``,
        ``tasks``; None: back to the default) (administrators)."""
        result = self.request("PUT", f"/quotas/{submitter}", json=caps)
        return _decoded(Quota, result, "a quota")

    # -- people -------------------------------------------------------------------------------

    def users(self) -> list[UserView]:
        """Every user account (administrators)."""
        return _each(UserView, self.request("GET", "/users"), "a user")

    def user(self, name: str) -> UserView:
        """One account (an administrator's, or your own)."""
        return _decoded(UserView, self.request("GET", f"/users/{name}"), "a user")

    def add_user(self, name: str, role: str = "user", **options: Any) -> UserView:
        """A new account (``password``, ``source``, ``email``) (administrators)."""
        result = self.request("POST", "/users", json={"name": name, "role": role, **options})
        return _decoded(UserView, result, "a user")

    def disable_user(self, name: str, *, disabled: bool = True) -> UserView:
        """Disable an account (its tokens stop working) or enable it (administrators)."""
        result = self.request("PUT", f"/users/{name}/disabled", json={"disabled": disabled})
        return _decoded(UserView, result, "a user")

    def set_password(self, name: str, password: str) -> None:
        """Replace a local account's password (an administrator, or the user)."""
        self.request("PUT", f"/users/{name}/password", json={"password": password})

    def groups(self) -> list[GroupView]:
        """Every group with its members."""
        return _each(GroupView, self.request("GET", "/groups"), "a group")

    def add_group(self, name: str, description: str = "") -> GroupView:
        """A new, empty group (administrators)."""
        result = self.request("POST", "/groups", json={"name": name, "description": description})
        return _decoded(GroupView, result, "a group")

    def set_member(self, group: str, user: str, *, write: bool | None) -> GroupView:
        """Put a user in a group (``write``: may control its datasets), or with None take
        them out (administrators)."""
        path = f"/groups/{group}/members/{user}"
        if write is None:
            result = self.request("DELETE", path)
        else:
            result = self.request("PUT", path, json={"write": write})
        return _decoded(GroupView, result, "a group")

    def my_tokens(self) -> list[TokenRecord]:
        """Your own tokens (never the tokens themselves)."""
        return _each(TokenRecord, self.request("GET", "/me/tokens"), "a token")

    def make_token(
        self, name: str, *, scope: str | None = None, expires_in: float | None = None
    ) -> NewToken:
        """A new token of your own (at most this one's scope), shown once."""
        body = {"name": name, "scope": scope, "expires_in": expires_in}
        return _decoded(NewToken, self.request("POST", "/me/tokens", json=body), "a new token")

    def revoke_my_token(self, token_id: int) -> None:
        """Revoke one of your own tokens."""
        self.request("DELETE", f"/me/tokens/{token_id}")

    def whoami(self) -> Caller:
        """Whom the server takes this client's token for."""
        return _decoded(Caller, self.request("GET", "/me"), "the caller")

    def permissions(self, ref: int | str) -> Permissions:
        """What this client's token may do to a dataset, each right with its reason."""
        result = self.request("GET", "/me/permissions", params={"dataset": ref})
        return _decoded(Permissions, result, "permissions")

    def health(self) -> Health:
        """How the server is (no token needed): ``status`` ``ok``, or ``unhealthy`` with its
        ``problems`` (the server answers 503 then, with the same body: returned, not raised;
        a 503 of another kind, such as a proxy's, is retried like any other)."""
        response = self.send("GET", "/health", keep=_is_health)
        return _decoded(Health, response.json(), "the server's health")


def _is_health(response: httpx.Response) -> bool:
    """An answer of ``/health``, healthy or not (an unhealthy server answers 503)."""
    if response.status_code not in (200, 503):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "status" in body and "version" in body


def _claim_body(slot: Slot, limit: int, request: str | None) -> dict[str, Any]:
    request_ = ClaimRequest(**slot_fields(slot), limit=limit, request_id=request)
    body: dict[str, Any] = encode(request_)
    return body


def send_heartbeats(url: str, beats: Sequence[Beat], **options: Any) -> list[str]:
    """Heartbeats of many attempts in one request; returns ``ok``, ``stale`` or ``denied``
    for each."""
    client = _Base(url, f"Passkey {beats[0].passkey}", **options)
    try:
        result: list[str] = client.request(
            "POST", "/pilot/heartbeats", json={"beats": [encode(b) for b in beats]}
        )["results"]
        return result
    finally:
        client.close()


def claim_reserved(url: str, task_id: int, key: str, **options: Any) -> AttemptKey:
    """A reserved task's pilot claims it; returns its attempt and passkey."""
    client = _Base(url, f"Reservation {key}", **options)
    try:
        result = client.request("POST", f"/pilot/tasks/{task_id}/claim")
        return _decoded(AttemptKey, result, "a reserved task's claim")
    finally:
        client.close()


class PilotClient(_Base):
    """What a pilot calls about its one attempt, with the attempt's passkey."""

    def __init__(self, url: str, task_id: int, attempt: int, passkey: str, **options: Any) -> None:
        super().__init__(url, f"Passkey {passkey}", **options)
        self.base = f"/pilot/tasks/{task_id}/attempts/{attempt}"

    def spec(self) -> TaskSpec:
        """The resolved task to run."""
        return _decoded(TaskSpec, self.request("GET", f"{self.base}/spec"), "a task's spec")

    def start(self, host: str) -> None:
        """The task is processing on ``host``."""
        self.request("POST", f"{self.base}/start", json={"host": host})

    def heartbeat(self, phase: str | None = None, logs: Sequence[LogChunk] = ()) -> list[LogAck]:
        """Alive (and now in ``phase``), with chunks of the attempt's logs; how much the
        server holds of each log they went to."""
        body: dict[str, Any] = {"phase": phase}
        if logs:
            body["logs"] = encode(list(logs))
        result = self.request("POST", f"{self.base}/heartbeat", json=body)
        return _each(LogAck, (result or {}).get("logs", []), "a log's acknowledgement")

    def append_log(self, chunk: LogChunk) -> LogAck:
        """Append a chunk to one of the attempt's logs (``LogGap`` naming the offset the
        server expects when it starts past the log's end)."""
        result = self.request(
            "PUT", f"{self.base}/logs/{chunk.name}",
            json={"offset": chunk.offset, "data": chunk.data, "gzip": chunk.gzip},
        )  # fmt: skip
        return _decoded(LogAck, result, "a log's acknowledgement")

    def finish(self, done: Finish) -> None:
        """The attempt succeeded."""
        self.request("POST", f"{self.base}/finish", json=encode(done))

    def fail(self, failure: Failure) -> str:
        """The attempt failed (or was stopped); returns the task's state."""
        result = self.request("POST", f"{self.base}/fail", json=encode(failure))
        status: str = result["status"]
        return status

    def log(self, name: str, text: str) -> None:
        """Keep the tail of a log."""
        self.request("PUT", f"{self.base}/logs/{name}", json={"text": text})


class PilotSession(_Base):
    """What a multi-task pilot calls, with its pilot key (each task's reports carry their
    own passkeys)."""

    def __init__(self, url: str, pilot_id: int, key: str, **options: Any) -> None:
        super().__init__(url, f"Pilot {key}", **options)
        self.pilot_id = pilot_id

    def exchange(
        self, reports: Sequence[Report] = (), *, limit: int = 0, wait: float = 0.0,
        time_left: float | None = None, host: str = "", request: str | None = None,
    ) -> ExchangeAnswer:  # fmt: skip
        """Send reports; get up to ``limit`` tasks (waiting up to ``wait`` s for one).

        ``request`` (default: a fresh ``request_id()``) names the exchange, as for a claim.
        """
        body = {
            "reports": [encode(r) for r in reports], "limit": limit, "wait": wait,
            "time_left": time_left, "host": host, "request_id": request or request_id(),
        }  # fmt: skip
        result = self.request("POST", f"/pilots/{self.pilot_id}/exchange", json=body)
        return _decoded(ExchangeAnswer, result, "an exchange")

    def end(self, reason: str) -> int:
        """The pilot is done; returns how many tasks it still held (they are reset)."""
        result = self.request("POST", f"/pilots/{self.pilot_id}/end", json={"reason": reason})
        return int(result["ended"])


__all__ = [
    "BadPasskey", "Client", "PilotClient", "PilotSession", "ServerError", "Unreachable",
]  # fmt: skip
