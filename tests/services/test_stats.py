import math
import statistics

import pytest

from frazil.model.records import SiteResources
from frazil.services import attempts
from frazil.services.claim import claim
from frazil.services.stats import dataset_stats
from frazil.services.submit import submit
from frazil.wire import Finish
from tests.services.conftest import make_config

NOW = 6_000_000.0


def test_stats_per_task_name_and_dataset(db):
    d = submit(db, make_config("flat", 2), jobs=3, now=NOW)
    values = {}
    for i, c in enumerate(claim(db, SiteResources(name="s"), 10, NOW)):
        v = float(i * 3 + 1)
        values.setdefault(c.name, []).append(v)
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW)
        attempts.finish(
            db, c.task_id, c.attempt, c.passkey, Finish(stats={"events": v, "ones": 1}), now=NOW
        )
    got = {(s.task_name, s.name): s for s in dataset_stats(db, d)}
    for name, vs in [*values.items(), ("*", values["t0"] + values["t1"])]:
        s = got[(name, "events")]
        assert (s.count, s.total, s.minimum, s.maximum) == (len(vs), sum(vs), min(vs), max(vs))
        assert math.isclose(s.mean, statistics.mean(vs))
        assert math.isclose(s.stddev, statistics.stdev(vs))
    assert got[("*", "ones")].stddev == 0.0
    assert [s.task_name for s in dataset_stats(db, d, task_name="t1")] == ["t1", "t1"]


def test_stats_come_a_page_of_names_at_a_time(db):
    d = submit(db, make_config("flat", 2), jobs=2, now=NOW)
    names = [f"n{i:03d}" for i in range(250)]
    for c in claim(db, SiteResources(name="s"), 10, NOW):
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW)
        stats = {n: float(i) for i, n in enumerate(names)}
        attempts.finish(db, c.task_id, c.attempt, c.passkey, Finish(stats=stats), now=NOW)
    pages, after = [], None
    while page := dataset_stats(db, d, limit=100, after=after):
        pages.append(page)
        after = page[-1].name
    assert [len({s.name for s in p}) for p in pages] == [100, 100, 50]
    rows = [(s.name, s.task_name) for p in pages for s in p]
    assert rows == [(n, t) for n in names for t in ("*", "t0", "t1")]
    n007 = [s for s in pages[0] if s.name == "n007"]
    assert [(s.count, s.total) for s in n007] == [(4, 28.0), (2, 14.0), (2, 14.0)]
    # one task name: its rows only, paged the same way
    page = dataset_stats(db, d, task_name="t1", limit=3, after="n100")
    assert [(s.name, s.task_name) for s in page] == [("n101", "t1"), ("n102", "t1"),
                                                     ("n103", "t1")]  # fmt: skip
    assert dataset_stats(db, d, after="n249") == []
    with pytest.raises(ValueError, match="1 to 10000"):
        dataset_stats(db, d, limit=0)
