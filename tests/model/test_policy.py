import pytest

from frazil.model.policy import Policy, parse_duration, policy_from_options, status_after_failure
from frazil.model.states import TaskStatus


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (2.5, 2.5), ("30m", 1800.0), ("2h", 7200.0), ("3d", 259200.0), (" 45 s ", 45.0)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5 weeks", "-3h", 0, -1, True, None, "h"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_policy_reads_options():
    policy, problems = policy_from_options(
        {"max_failures": 3, "debug": True, "timeouts": {"queued": "1d", "heartbeat": 600}}
    )
    assert problems == []
    assert policy == Policy(
        max_failures=3, debug=True, queued_timeout=86400.0, heartbeat_timeout=600.0
    )


def test_policy_reports_each_bad_option_with_its_path():
    _, problems = policy_from_options(
        {"max_failures": 0, "debug": "yes", "timeouts": {"queue": "1d", "processing": "soon"}}
    )
    paths = [p.path for p in problems]
    assert paths == [
        "options.max_failures",
        "options.debug",
        "options.timeouts.queue",
        "options.timeouts.processing",
    ]


def test_failures_retry_until_max_then_fail():
    policy = Policy(max_failures=3)
    assert status_after_failure(1, policy) is TaskStatus.WAITING
    assert status_after_failure(2, policy) is TaskStatus.WAITING
    assert status_after_failure(3, policy) is TaskStatus.FAILED


def test_debug_mode_suspends_on_any_failure():
    assert status_after_failure(1, Policy(debug=True)) is TaskStatus.SUSPENDED
