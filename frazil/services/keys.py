"""The secrets Frazil hands out and what it keeps of them.

An attempt's passkey, a multi-task pilot's key, a reservation's key and a request id are
random and long; the database keeps only their hash (``hash_key``), and ``key_matches`` is the
one comparison of a key with what was kept (in constant time). A repeated claim or exchange
gets the passkeys the first one handed out: ``request_passkey`` derives them from the request
id, which only the requester knows. API tokens are hashed apart (``tokens``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from frazil.errors import Rejected

#: A request id: 32-64 URL-safe characters (``secrets.token_urlsafe(32)`` makes one).
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")


def hash_key(key: str) -> str:
    """The stored form of a key (random and long, so one fast hash is enough)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(stored: str | None, key: str) -> bool:
    """Whether ``key`` is the one whose hash was stored (``None``: none was)."""
    return stored is not None and hmac.compare_digest(stored, hash_key(key))


def check_request_id(request_id: str) -> None:
    """Refuse a request id too short to derive passkeys from."""
    if not REQUEST_ID.fullmatch(request_id):
        raise Rejected("a request id is 32 to 64 letters, digits, '-' or '_'")


def request_passkey(request_id: str, task_id: int, number: int) -> str:
    """The passkey of attempt ``number`` of a task handed out by request ``request_id``: a
    repeat of the request gets the same one, and only the requester can compute it."""
    message = f"{task_id}:{number}".encode()
    digest = hmac.new(request_id.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()
