"""What crosses the network between the server, its sites, their pilots and the client.

Every shape is named once, in this package, as a frozen standard-library dataclass
(``claims``: slots and what a site is handed; ``spec``: the resolved task; ``reports``: what
pilots say; ``views``: what people read; ``codec``: JSON to shapes and back; ``version``: the
protocol's version): the pilot imports
nothing but the standard library and httpx, and it speaks these. The server's routes take
them as request bodies (pydantic validates JSON into the dataclasses themselves, with the
bounds each checks in ``__post_init__``); the client decodes answers into them with
``decode``; the site daemon and the pilots read attributes, never string keys, so renaming a
field breaks the type check instead of a pilot at run time.

``PROTOCOL`` is the version of this format. Every request of the client carries it in the
``Frazil-Protocol`` header and every answer of the server names its own: a server refuses a
caller whose version it cannot serve (426, naming both), and a caller refuses a server older
than itself, so a pilot or site of another release fails at its first call with a message
that says what to upgrade, never halfway through a task. A request without the header (a
person with curl) is served as the current version.
"""

from __future__ import annotations

from frazil.wire.blobs import (
    BLOB_SCHEME,
    BlobLimits,
    BlobStored,
    blob_ref,
    is_sha256,
    parse_blob_ref,
)
from frazil.wire.checks import (
    MAX_AMOUNT,
    MAX_COUNT,
    REPORT_KINDS,
    REPORT_RESULTS,
    RESOURCES,
)
from frazil.wire.claims import (
    AttemptKey,
    Claim,
    ClaimRequest,
    DagTask,
    JobClaim,
    NewPilot,
    SiteInfo,
    Slot,
    check_request_id,
    slot_fields,
)
from frazil.wire.codec import (
    WireError,
    decode,
    encode,
)
from frazil.wire.logs import (
    ATTEMPT_HEADER,
    MAX_CHUNK,
    LogAck,
    LogChunk,
    LogPart,
    check_log_name,
)
from frazil.wire.reports import (
    Beat,
    Exchange,
    ExchangeAnswer,
    Failure,
    FileRecord,
    Finish,
    Report,
    Usage,
)
from frazil.wire.spec import (
    Data,
    Handed,
    Module,
    Requirements,
    TaskSpec,
    Tray,
    handed_json,
)
from frazil.wire.version import (
    OLDEST_PROTOCOL,
    PROTOCOL,
    PROTOCOL_HEADER,
)
from frazil.wire.views import (
    FAILED_WINDOW,
    TOTAL_HEADER,
    AttemptView,
    Caller,
    Checked,
    ConfigEdited,
    ConfigVersion,
    DaemonHealth,
    DatasetDeleted,
    DatasetStatusView,
    DatasetView,
    EventView,
    GroupView,
    Health,
    Holdings,
    JobsSet,
    JobView,
    LogView,
    NewToken,
    Page,
    Permissions,
    PilotView,
    Quota,
    RightView,
    SiteStatus,
    SiteView,
    StatSummary,
    Submitted,
    TaskDetail,
    TaskView,
    TokenRecord,
    UserView,
)

__all__ = [
    "ATTEMPT_HEADER",
    "BLOB_SCHEME",
    "FAILED_WINDOW",
    "MAX_AMOUNT",
    "MAX_CHUNK",
    "MAX_COUNT",
    "OLDEST_PROTOCOL",
    "PROTOCOL",
    "PROTOCOL_HEADER",
    "REPORT_KINDS",
    "REPORT_RESULTS",
    "RESOURCES",
    "TOTAL_HEADER",
    "AttemptKey",
    "AttemptView",
    "Beat",
    "BlobLimits",
    "BlobStored",
    "Caller",
    "Checked",
    "Claim",
    "ClaimRequest",
    "ConfigEdited",
    "ConfigVersion",
    "DaemonHealth",
    "DagTask",
    "Data",
    "DatasetDeleted",
    "DatasetStatusView",
    "DatasetView",
    "EventView",
    "Exchange",
    "ExchangeAnswer",
    "Failure",
    "FileRecord",
    "Finish",
    "GroupView",
    "Handed",
    "Health",
    "Holdings",
    "JobClaim",
    "JobView",
    "JobsSet",
    "LogAck",
    "LogChunk",
    "LogPart",
    "LogView",
    "Module",
    "NewPilot",
    "NewToken",
    "Page",
    "Permissions",
    "PilotView",
    "Quota",
    "Report",
    "Requirements",
    "RightView",
    "SiteInfo",
    "SiteStatus",
    "SiteView",
    "Slot",
    "StatSummary",
    "Submitted",
    "TaskDetail",
    "TaskSpec",
    "TaskView",
    "TokenRecord",
    "Tray",
    "Usage",
    "UserView",
    "WireError",
    "blob_ref",
    "check_log_name",
    "check_request_id",
    "decode",
    "encode",
    "handed_json",
    "is_sha256",
    "parse_blob_ref",
    "slot_fields",
]
