"""Callers of another release meet a clear refusal naming both versions, at their first call."""

from __future__ import annotations

import httpx
import pytest

from frazil.client import Client, PilotClient
from frazil.errors import ProtocolMismatch
from frazil.wire import OLDEST_PROTOCOL, PROTOCOL, PROTOCOL_HEADER


def test_every_answer_names_the_servers_version(live):
    r = httpx.get(f"{live.url}/health")
    assert r.headers[PROTOCOL_HEADER] == str(PROTOCOL)
    r = httpx.get(f"{live.url}/datasets")  # refused for want of a token: still named
    assert r.status_code == 401 and r.headers[PROTOCOL_HEADER] == str(PROTOCOL)


@pytest.mark.parametrize(
    ("theirs", "says"),
    [
        (PROTOCOL + 1, f"the caller speaks Frazil protocol {PROTOCOL + 1}, this server speaks "
                       f"{PROTOCOL}: upgrade the server"),
        (OLDEST_PROTOCOL - 1, f"the caller speaks Frazil protocol {OLDEST_PROTOCOL - 1}, this "
                              "server speaks "),
        (OLDEST_PROTOCOL - 1, "upgrade the site, pilot or client to the server's release"),
        ("one", "Frazil-Protocol must be a whole number, not 'one'"),
    ],
)  # fmt: skip
def test_a_caller_of_another_version_is_refused_before_anything_else(live, theirs, says):
    r = httpx.post(
        f"{live.url}/pilots/1/exchange", content=b"x" * 100,
        headers={PROTOCOL_HEADER: str(theirs), "Authorization": "Pilot wrong"},
    )  # fmt: skip
    assert r.status_code == 426, r.text
    assert r.json()["error"] == "ProtocolMismatch" and says in r.json()["detail"]


def test_a_newer_pilot_stops_at_its_first_call_saying_what_to_upgrade(live):
    pilot = PilotClient(live.url, 1, 1, "a-passkey", retry_for=0)
    pilot._http.headers[PROTOCOL_HEADER] = str(PROTOCOL + 1)  # as a later release sends it
    with pytest.raises(ProtocolMismatch, match=f"speaks Frazil protocol {PROTOCOL + 1}"):
        pilot.spec()


def test_a_client_refuses_a_server_older_than_itself():
    def older(request: httpx.Request) -> httpx.Response:
        assert request.headers[PROTOCOL_HEADER] == str(PROTOCOL)
        return httpx.Response(200, json={"status": "ok"}, headers={PROTOCOL_HEADER: "0"})

    client = Client("http://old.example", "frz_x", transport=httpx.MockTransport(older))
    with pytest.raises(ProtocolMismatch) as info:
        client.health()
    assert str(info.value) == (
        f"the server at http://old.example speaks Frazil protocol 0, this client speaks "
        f"{PROTOCOL}: upgrade the server, or use a site, pilot and client of the server's release"
    )
