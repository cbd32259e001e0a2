import math
import statistics

from frazil.model.records import SiteResources
from frazil.services import attempts
from frazil.services.claim import claim
from frazil.services.stats import dataset_stats
from frazil.services.submit import submit
from tests.services.conftest import make_config

NOW = 6_000_000.0


def test_stats_per_task_name_and_dataset(db):
    d = submit(db, make_config("flat", 2), jobs=3, now=NOW)
    values = {}
    for i, c in enumerate(claim(db, SiteResources("s"), 10, NOW)):
        v = float(i * 3 + 1)
        values.setdefault(c.name, []).append(v)
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW)
        attempts.finish(
            db, c.task_id, c.attempt, c.passkey, now=NOW, stats={"events": v, "ones": 1}
        )
    got = {(s.task_name, s.name): s for s in dataset_stats(db, d)}
    for name, vs in [*values.items(), ("*", values["t0"] + values["t1"])]:
        s = got[(name, "events")]
        assert (s.count, s.total, s.minimum, s.maximum) == (len(vs), sum(vs), min(vs), max(vs))
        assert math.isclose(s.mean, statistics.mean(vs))
        assert math.isclose(s.stddev, statistics.stdev(vs))
    assert got[("*", "ones")].stddev == 0.0
    assert [s.task_name for s in dataset_stats(db, d, task_name="t1")] == ["t1", "t1"]
