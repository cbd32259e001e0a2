"""The wire format: one shape per thing sent, its own bounds, and a lossless trip through JSON."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from frazil import wire
from frazil.model.resolve import JobInfo, resolve_job
from frazil.wire import (
    ClaimRequest,
    Failure,
    Handed,
    Report,
    Slot,
    TaskSpec,
    WireError,
    decode,
    encode,
)
from tests.services.conftest import make_config


def _through_json(value: object) -> object:
    return json.loads(json.dumps(encode(value)))


def test_every_shape_is_a_frozen_dataclass() -> None:
    shapes = [v for v in vars(wire).values() if dataclasses.is_dataclass(v)]
    assert len(shapes) >= 20
    for shape in shapes:
        assert shape.__dataclass_params__.frozen, shape.__name__  # type: ignore[union-attr]


def test_a_resolved_spec_survives_json_and_decodes_into_the_same_shape() -> None:
    (first, *_rest) = resolve_job(make_config("diamond", 4), JobInfo(dataset=3, job=1))
    again = decode(TaskSpec, _through_json(first))
    assert again == first
    assert isinstance(again.trays[0].modules[0], wire.Module)
    assert isinstance(again.data, tuple) and isinstance(again.requirements, wire.Requirements)
    handed = decode(Handed, wire.handed_json(wire.AttemptKey(7, 2, "k"), encode(first)))
    assert (handed.task_id, handed.attempt, handed.passkey, handed.spec) == (7, 2, "k", first)


def test_decoding_names_what_is_missing_and_ignores_what_is_new() -> None:
    data = encode(wire.AttemptKey(1, 2, "key"))
    assert decode(wire.AttemptKey, {**data, "added_later": True}) == wire.AttemptKey(1, 2, "key")
    del data["passkey"]
    with pytest.raises(WireError, match="AttemptKey lacks passkey"):
        decode(wire.AttemptKey, data)
    with pytest.raises(WireError, match="must be an object, not list"):
        decode(wire.ExchangeAnswer, {"results": [], "tasks": [[1, 2]]})


def test_a_report_round_trips_and_splits_into_what_it_says() -> None:
    failure = Failure("boom", wire.Usage(cpu_time=1.5), ("time",), 3, {"x": 1.0}, True, True)
    report = Report.failed(wire.AttemptKey(5, 1, "pk"), failure, {"stdout": "tail"})
    again = decode(Report, _through_json(report))
    assert again == report and again.failure == failure and again.logs == {"stdout": "tail"}
    done = wire.Finish(None, {"n": 2.0}, (wire.FileRecord("file:///x", "output"),))
    assert Report.finished(wire.AttemptKey(5, 1, "pk"), done, {}).finish == done


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: Slot(cpu=0), "Slot.cpu must be between 1 and 1,000,000, not 0"),
        (lambda: Slot(memory=math.nan), "Slot.memory must be above 0"),
        (lambda: Slot(time=-1.0), "Slot.time must be above 0"),
        (lambda: ClaimRequest(limit=0), "ClaimRequest.limit must be between 1 and 10,000"),
        (lambda: ClaimRequest(request_id="short"), "a request id is 32 to 64 characters"),
        (lambda: Failure("x", exhausted=("cpu",)), "unknown resources ['cpu']"),
        (lambda: Failure("e" * 100_001), "Failure.error must be 0 to 100000 characters long"),
        (lambda: Report("finish", 1, 0, "pk"), "Report.attempt must be at least 1"),
        (lambda: Report("done", 1, 1, "pk"), "Report.kind must be finish or fail or log"),
        (lambda: wire.FileRecord("u", "sideways"), "FileRecord.movement must be input"),
        (lambda: wire.Usage(cpu_time=-1.0), "Usage.cpu_time must be at least 0"),
        (lambda: wire.Exchange(wait=61.0), "Exchange.wait must be between 0 and 60 seconds"),
    ],
)
def test_each_shape_checks_its_own_bounds(make, says) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert says in str(info.value)


def test_a_slots_fields_build_the_shapes_that_extend_it() -> None:
    slot = Slot(cpu=4, gpu=1, memory=8.0, attributes={"cvmfs": True})
    claim = ClaimRequest(**wire.slot_fields(slot), limit=3)
    assert claim.slot() == slot and claim.limit == 3
    site = wire.SiteInfo(**wire.slot_fields(slot), system={"storage": "file:///s"})
    assert site.slot() == slot and encode(site)["system"] == {"storage": "file:///s"}
