"""Where a log lives, on SQLite, PostgreSQL and MariaDB: whole in its row up to what a row
holds (a MariaDB TEXT column: 65,535 bytes of UTF-8), in its file beyond, the row keeping a
tail that fits."""

from frazil.model.records import SiteResources
from frazil.services import queries, task_logs
from frazil.services.claim import claim
from frazil.services.submit import submit
from frazil.store.log_files import LogFiles
from frazil.wire import LogChunk
from tests.services.conftest import make_config

NOW = 5_000_000.0


def test_a_log_is_whole_in_its_row_up_to_its_size_and_in_its_file_beyond(db, tmp_path):
    files = LogFiles(tmp_path / "logs")
    submit(db, make_config("flat", 1), jobs=1, now=NOW)
    (c,) = claim(db, SiteResources(name="site-a"), 1, NOW)

    def append(name: str, offset: int, data: bytes) -> int:
        chunk = LogChunk.of(name, offset, data)
        return task_logs.append_log(db, files, c.task_id, c.attempt, c.passkey, chunk, now=NOW).size

    full = b"x" * task_logs.LOG_TAIL  # as much as a row holds
    assert append("stdout", 0, full[:1000]) == 1000
    assert append("stdout", 1000, full[1000:]) == len(full) == 65_535
    wide = "é".encode() * 40_000  # 80,000 bytes in 40,000 characters
    assert append("stderr", 0, wide) == 80_000
    assert [p.name for p in (tmp_path / "logs").rglob("*.log")] == ["stderr.log"]
    logs = {log.name: log for log in queries.task_logs(db, c.task_id)}
    assert logs["stdout"].text.encode() == full and logs["stdout"].size == 65_535
    tail = logs["stderr"].text.encode()
    assert len(tail) <= task_logs.LOG_TAIL and wide.endswith(tail) and len(tail) > 60_000
    part = task_logs.read_log(db, files, c.task_id, "stderr", start=79_998)
    assert part.data == "é".encode() and part.total == 80_000
