"""``http://`` and ``https://`` transfers through httpx: streaming GET, streaming PUT.

Connection errors, timeouts and 5xx answers (also 408 and 429) are retried a bounded number of
times with exponential backoff; any other 4xx fails at once, since asking again changes
nothing. Timeouts bound each connect, read and write, not the whole transfer, so a large file
on a slow but live link is not cut off.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx

from frazil.errors import TransferError
from frazil.pilot.checksum import CHUNK_SIZE
from frazil.pilot.protocols import SourceMissing, redact

log = logging.getLogger(__name__)

#: Client errors that are worth asking again for: the server was busy, not the request wrong.
RETRYABLE_4XX = frozenset({408, 429})


class _Retry(Exception):
    """An answer that another attempt may improve on."""


class HttpProtocol:
    """Transfers over HTTP(S); see ``frazil.pilot.protocols.Protocol`` for the contract."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        headers: Mapping[str, str] | None = None,
        verify: bool | str | ssl.SSLContext = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``retries`` counts attempts after the first; ``verify`` may name a CA bundle file.

        ``headers`` go with every request (an ``Authorization`` header, say). ``sleep`` is
        there so that tests need not wait out the backoff.
        """
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.headers = dict(headers or {})
        self.verify = verify
        self._sleep = sleep

    def get(self, url: str, dest: Path) -> None:
        """Stream ``url`` into ``dest``; 404 and 410 raise ``SourceMissing``."""

        def attempt(client: httpx.Client) -> None:
            # identity: store the bytes as served; httpx would otherwise undo a Content-Encoding
            # that some servers put on .gz files, and the checksum would no longer match.
            headers = {"Accept-Encoding": "identity"}
            with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
                self._check(response, "GET", url)
                with open(dest, "wb") as out:  # "wb": a retry starts the file afresh
                    for chunk in response.iter_raw(CHUNK_SIZE):
                        out.write(chunk)

        self._with_retries("GET", url, attempt)
        log.debug("downloaded %s to %s", redact(url), dest)

    def put(self, src: Path, url: str) -> None:
        """Stream ``src`` to ``url`` with PUT; any 2xx answer is success."""
        try:
            size = src.stat().st_size
        except FileNotFoundError as exc:
            raise SourceMissing(f"no such file: {src}") from exc
        except OSError as exc:
            raise TransferError(f"cannot read {src}: {exc}") from exc

        def body() -> Iterator[bytes]:
            with open(src, "rb") as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    yield chunk

        def attempt(client: httpx.Client) -> None:
            # An explicit length keeps httpx from chunked encoding, which many servers refuse.
            headers = {"Content-Length": str(size)}
            with client.stream("PUT", url, content=body(), headers=headers) as response:
                self._check(response, "PUT", url)

        self._with_retries("PUT", url, attempt)
        log.debug("uploaded %s to %s", src, redact(url))

    def _with_retries(self, method: str, url: str, attempt: Callable[[httpx.Client], None]) -> None:
        shown = redact(url)
        last = ""
        with self._client() as client:
            for number in range(self.retries + 1):
                if number:
                    delay = min(self.backoff * 2 ** (number - 1), self.max_backoff)
                    log.warning(
                        "%s %s failed (%s); attempt %d of %d in %.1f s",
                        method,
                        shown,
                        last,
                        number + 1,
                        self.retries + 1,
                        delay,
                    )
                    self._sleep(delay)
                try:
                    attempt(client)
                except _Retry as exc:
                    last = str(exc)
                except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                    raise TransferError(f"{method} {shown}: bad URL: {exc}") from exc
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                except httpx.HTTPError as exc:  # too many redirects and the like
                    raise TransferError(f"{method} {shown}: {exc}") from exc
                except OSError as exc:  # the local file, not the network
                    raise TransferError(f"{method} {shown}: {exc}") from exc
                else:
                    return
        raise TransferError(f"{method} {shown} failed after {self.retries + 1} attempts: {last}")

    def _client(self) -> httpx.Client:
        verify = self.verify
        if isinstance(verify, str):  # httpx wants a CA bundle as an SSL context
            try:
                verify = ssl.create_default_context(cafile=verify)
            except (OSError, ssl.SSLError) as exc:
                raise TransferError(f"cannot load the CA bundle {verify}: {exc}") from exc
        return httpx.Client(timeout=self.timeout, headers=self.headers, verify=verify)

    @staticmethod
    def _check(response: httpx.Response, method: str, url: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        text = response.read()[:300].decode("utf-8", "replace").strip()
        what = f"HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
        if status >= 500 or status in RETRYABLE_4XX:
            raise _Retry(what)
        if method == "GET" and status in (404, 410):
            raise SourceMissing(f"{method} {redact(url)}: {what}")
        raise TransferError(f"{method} {redact(url)}: {what}")
