"""The API against its own OpenAPI description (schemathesis), over real HTTP on loopback.

With a valid admin token, no request that schemathesis makes from the description, valid
or deliberately invalid, gets a 5xx; every refusal is JSON that says what is wrong. Without
a valid token every operation answers 401 or 403 but ``GET /health``, which load balancers
call without one (the description itself is public too).
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode

from frazil.server.app import create_app
from frazil.store import Database
from tests.fuzz.conftest import Served

#: Examples per operation and generation mode: about 2 minutes for the whole module here.
EXAMPLES = 12


def _operations() -> list[tuple[str, str]]:
    spec = create_app(Database("sqlite://")).openapi()  # the description needs no database
    return [(m.upper(), p) for p, methods in spec["paths"].items() for m in methods]


OPERATIONS = _operations()
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # real HTTP on a busy machine: the bound is the request timeout
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Served) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")


def _refusal_is_json(response) -> None:
    body = response.json()
    assert isinstance(body, dict) and body.get("detail"), response.text


def _label(method: str, path: str) -> str:
    return f"{method} {path}"


def test_the_served_description_is_the_one_fuzzed(fuzz_server):
    served = httpx.get(f"{fuzz_server.url}/openapi.json").json()
    assert sorted(_label(m.upper(), p) for p, ms in served["paths"].items() for m in ms) == sorted(
        _label(m, p) for m, p in OPERATIONS
    )
    assert len(OPERATIONS) > 20


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[_label(*o) for o in OPERATIONS])
def test_no_request_gets_a_server_error(api_schema, fuzz_server, method, path):
    operation = api_schema[path][method]
    seen: list[int] = []

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @SETTINGS
        @given(case=operation.as_strategy(mode))
        def run(case: Case) -> None:
            # keep the admin token usable for the rest of the run
            assume(case.path_parameters.get("token_id") != fuzz_server.admin_id)
            response = case.call(
                base_url=fuzz_server.url, headers=fuzz_server.headers(), timeout=60
            )
            seen.append(response.status_code)
            assert response.status_code < 500, (case.as_curl_command(), response.text)
            if response.status_code >= 400:
                _refusal_is_json(response)

        try:
            run()
        except Unsatisfiable:
            # nothing to violate (a free text path parameter and no body): no negative case
            assert mode is GenerationMode.NEGATIVE
    assert seen


#: What answers whoever asks: the server's health, for load balancers.
PUBLIC = {("GET", "/health")}
#: A name and a password instead of a token: made-up ones are refused (401), or after a
#: few failures from one address, not even checked (429).
LOGIN = ("POST", "/login")
#: Credentials that name no valid token: every route answers 401 or 403.
NO_TOKEN = [{}, {"Authorization": "Bearer frz_not-a-token"}, {"Authorization": "Basic x"},
            {"Authorization": "Bearer"}, {"Authorization": "frz_not-a-token"}]  # fmt: skip
#: Keys that a service checks against the attempt, task or pilot they name. The request is
#: read first, so a malformed one is a 400 or 422 and one for a missing attempt a 404; a
#: wrong key never gets further.
WRONG_KEY = [{"Authorization": f"{scheme} nope"} for scheme in ("Passkey", "Reservation", "Pilot")]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[_label(*o) for o in OPERATIONS])
def test_no_operation_answers_without_a_valid_token(api_schema, fuzz_server, method, path):
    operation = api_schema[path][method]

    @SETTINGS
    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    def run(case: Case) -> None:
        for headers in NO_TOKEN + WRONG_KEY:
            response = case.call(base_url=fuzz_server.url, headers=headers, timeout=60)
            what = (headers, case.as_curl_command(), response.text)
            if (method, path) in PUBLIC:
                assert response.status_code == 200 and response.json()["status"] == "ok", what
                continue
            if (method, path) == LOGIN:
                assert response.status_code in (401, 429), what
                _refusal_is_json(response)
                continue
            if headers in NO_TOKEN:
                assert response.status_code in (401, 403), what
            else:
                assert 400 <= response.status_code < 500, what
            _refusal_is_json(response)

    run()
