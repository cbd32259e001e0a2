"""psycopg connections whose every wait for the server has a deadline (the read timeout).

psycopg waits on the connection's socket for as long as it takes: a server that is stopped,
or a network that holds packets, keeps the caller waiting for ever (TCP keepalives are
answered by the peer's kernel). Each wait of these connections (a statement, a commit, a
ping) gives up after ``read_timeout`` seconds: the connection, whose protocol state is then
unknown, is closed, and ``OperationalError`` is raised, which the pool takes as a lost
connection.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors


class ReadTimeout(psycopg.OperationalError):
    """The server did not answer within the read timeout; the connection was closed."""


def timed_connection(read_timeout: float) -> type[psycopg.Connection[Any]]:
    """A ``psycopg.Connection`` class whose waits end after ``read_timeout`` seconds."""

    class TimedConnection(psycopg.Connection[Any]):
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return super().wait(gen, interval, read_timeout if timeout is None else timeout)
            except errors._WaitTimeout as exc:  # psycopg's own deadline (documented on wait)
                self.pgconn.finish()
                raise ReadTimeout(
                    f"no answer from the database server in {read_timeout:g} s (read timeout)"
                ) from exc

    return TimedConnection
