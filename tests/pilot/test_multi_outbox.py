"""A multi-task pilot sends its reports in batches the server reads before checking its key."""

from __future__ import annotations

import json

from frazil.pilot.multi import REPORT_BATCH, REPORT_BYTES, MultiOptions, MultiPilot


def _pilot(tmp_path) -> MultiPilot:
    options = MultiOptions(server="http://127.0.0.1:9", pilot_id=1, key="k", workdir=tmp_path)
    return MultiPilot(options, session=object())


def _report(i: int, size: int) -> dict[str, object]:
    return {"kind": "finish", "task_id": i, "attempt": 1, "logs": {"stdout": "x" * size}}


def test_batches_stop_at_report_bytes(tmp_path):
    pilot = _pilot(tmp_path)
    pilot.outbox = [_report(i, 300_000) for i in range(10)]
    batches = []
    while batch := pilot._take_outbox():
        batches.append(batch)
        assert len(json.dumps(batch)) <= REPORT_BYTES
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [r["task_id"] for b in batches for r in b] == list(range(10))


def test_a_report_larger_than_a_batch_goes_alone_and_small_ones_by_count(tmp_path):
    pilot = _pilot(tmp_path)
    pilot.outbox = [_report(0, 2 * REPORT_BYTES), _report(1, 10)]
    assert [r["task_id"] for r in pilot._take_outbox()] == [0]
    pilot.outbox = [_report(i, 10) for i in range(REPORT_BATCH + 5)]
    assert len(pilot._take_outbox()) == REPORT_BATCH
    assert len(pilot.outbox) == 5
