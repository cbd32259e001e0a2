"""DAGs run from the submitting process over the real local plugin."""

import pytest

from frazil.batch.base import BatchState
from frazil.batch.foreground import run_dags


def test_each_job_starts_after_its_parents_and_a_failure_stops_its_descendants(
    local_plugin, request_for, tmp_path
):
    plugin = local_plugin()
    order = tmp_path / "order.txt"

    def step(name, code=0):
        return request_for(name, f"echo {name} >> {order}; exit {code}")

    #    a -> b -> d, a -> c (fails) -> e -> f
    requests = [step("a"), step("b"), step("c", code=3), step("d"), step("e"), step("f")]
    parents = [[], [0], [0], [1], [2], [4]]
    seen = []
    outcomes = run_dags(plugin, requests, parents, poll_interval=0.05,
                        report=lambda i, o: seen.append((i, o.state)))  # fmt: skip
    assert [o.state for o in outcomes] == [
        BatchState.COMPLETED, BatchState.COMPLETED, BatchState.FAILED, BatchState.COMPLETED,
        None, None,
    ]  # fmt: skip
    assert outcomes[2].exit_code == 3
    assert (outcomes[4].blocked_by, outcomes[5].blocked_by) == (2, 4)
    assert outcomes[4].reason == "c did not complete"
    lines = order.read_text().split()
    assert sorted(lines) == ["a", "b", "c", "d"]
    assert lines[0] == "a" and lines.index("b") < lines.index("d")
    assert seen.index((1, BatchState.PENDING)) > seen.index((0, BatchState.COMPLETED))


def test_an_interruption_cancels_what_runs(local_plugin, request_for, tmp_path):
    plugin = local_plugin()
    requests = [request_for("long", "sleep 60"), request_for("after", "true")]

    def interrupt(_seconds):
        raise KeyboardInterrupt

    ids = []
    with pytest.raises(KeyboardInterrupt):
        run_dags(plugin, requests, [[], [0]], sleep=interrupt,
                 report=lambda i, o: ids.append(o.batch_id))  # fmt: skip
    (long_id,) = ids
    assert plugin.status([long_id])[long_id].state is BatchState.CANCELLED


def test_parents_must_come_first(local_plugin, request_for):
    with pytest.raises(ValueError, match="parents must come before"):
        run_dags(local_plugin(), [request_for("a", "true")], [[0]])
