"""Names compare exactly, case and all, on SQLite, PostgreSQL and MariaDB."""

from sqlalchemy.engine import make_url

from frazil.model.records import SiteResources
from frazil.services import queries, sites, specs, task_logs
from frazil.services.claim import claim
from frazil.services.submit import submit
from frazil.store.schema import metadata
from tests.services.conftest import make_config

NOW = 5_000_000.0


def test_sites_that_differ_only_in_case_are_two_sites(db):
    sites.register(db, SiteResources(name="site-a", cpu=1), now=NOW,
                   info={"system": {"storage": "file:///lower"}})  # fmt: skip
    sites.register(db, SiteResources(name="SITE-A", cpu=8), now=NOW,
                   info={"system": {"storage": "file:///upper"}})  # fmt: skip
    assert {s.name: s.resources["cpu"] for s in sites.list_sites(db)} == {"SITE-A": 8, "site-a": 1}
    with db.read() as conn:
        assert specs.site_system(conn, "site-a")["storage"] == "file:///lower"
        assert specs.site_system(conn, "SITE-A")["storage"] == "file:///upper"


def test_a_task_site_or_os_requirement_matches_the_exact_name(db):
    d = submit(db, make_config("flat", 2, requirements={"site": "site-a", "os": "RHEL_9"}),
               jobs=1, now=NOW)  # fmt: skip
    assert claim(db, SiteResources(name="SITE-A", os="RHEL_9"), 5, NOW) == []
    assert claim(db, SiteResources(name="Site-A", os="RHEL_9"), 5, NOW) == []
    assert claim(db, SiteResources(name="site-a", os="rhel_9"), 5, NOW) == []
    claims = claim(db, SiteResources(name="site-a", os="RHEL_9"), 5, NOW)
    assert [(c.dataset_id, c.name) for c in claims] == [(d, "t0"), (d, "t1")]


def test_aliases_that_differ_only_in_case_are_two_datasets(db):
    lower = submit(db, make_config("flat", 1), jobs=1, now=NOW, alias="sim")
    upper = submit(db, make_config("flat", 1), jobs=2, now=NOW, alias="Sim")
    assert lower != upper
    assert queries.dataset_status(db, "sim").dataset.id == lower
    assert queries.dataset_status(db, "Sim").dataset.id == upper


def test_logs_that_differ_only_in_case_are_two_logs(db):
    submit(db, make_config("flat", 1), jobs=1, now=NOW)
    (c,) = claim(db, SiteResources(name="site-a"), 1, NOW)
    for name, text in (("stdout", "lower\n"), ("STDOUT", "upper\n"), ("stdout", "lower again\n")):
        task_logs.store_log(db, c.task_id, c.attempt, c.passkey, name=name, text=text, now=NOW)
    logs = {log.name: log.text for log in queries.task_logs(db, c.task_id)}
    assert logs == {"STDOUT": "upper\n", "stdout": "lower again\n"}


def test_every_name_column_compares_exactly_on_mariadb():
    """Each VARCHAR(255) column carries the binary collation on MariaDB and MySQL (the
    migration 0006 sets the same; ``tests/store/test_db.py`` compares the two)."""
    names = [
        c for t in metadata.sorted_tables for c in t.columns if getattr(c.type, "length", 0) == 255
    ]
    assert len(names) >= 34
    for backend in ("mysql", "mariadb"):
        dialect = make_url(f"{backend}+pymysql://").get_dialect()()
        for column in names:
            rendered = column.type.compile(dialect=dialect)
            assert rendered == "VARCHAR(255) COLLATE utf8mb4_bin", (column, backend)
