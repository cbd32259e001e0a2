"""Files uploaded with configs, by sha256: any user uploads, any token reads, and a pilot
fetches the files its dataset's configs name with its attempt's passkey."""

from __future__ import annotations

from fastapi import APIRouter, Response

from frazil.server.deps import Passkey, Reader, State, User
from frazil.server.schemas import BlobBody, ChecksumsBody
from frazil.services import blobs
from frazil.wire import BlobLimits, BlobStored

router = APIRouter(prefix="/blobs", tags=["blobs"])
pilot = APIRouter(prefix="/pilot/tasks/{task_id}/attempts/{attempt}", tags=["pilot"])

OCTETS = "application/octet-stream"


@router.get("")
def limits(app: State, _: Reader) -> BlobLimits:
    """How large one uploaded file, and one submission's files together, may be."""
    return app.blob_limits


@router.put("/{sha256}")
def upload(sha256: str, body: BlobBody, app: State, _: User) -> BlobStored:
    """Keep a file (base64 in JSON) under its sha256, which the server checks."""
    return blobs.put(app.blobs, sha256, body.content, app.blob_limits)


@router.post("/missing")
def missing(body: ChecksumsBody, app: State, _: Reader) -> dict[str, list[str]]:
    """Which of these files the server does not keep (to upload before a submission)."""
    return {"missing": blobs.missing(app.blobs, body.sha256)}


@router.get("/{sha256}")
def download(sha256: str, app: State, _: Reader) -> Response:
    """The file's bytes."""
    return Response(blobs.content(app.blobs, sha256), media_type=OCTETS)


@pilot.get("/blobs/{sha256}")
def for_attempt(task_id: int, attempt: int, sha256: str, key: Passkey, app: State) -> Response:
    """A file uploaded with the attempt's dataset's config, for its pilot."""
    data = blobs.for_attempt(app.db, app.blobs, task_id, attempt, key, sha256)
    return Response(data, media_type=OCTETS)
