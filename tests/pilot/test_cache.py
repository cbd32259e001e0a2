"""The download cache: hits re-verify, corrupted entries are replaced, fills may race."""

import hashlib
import os
import threading
from pathlib import Path

import pytest

from frazil.errors import TransferError
from frazil.pilot.cache import Cache
from frazil.pilot.transfer import stage_in
from tests.pilot.conftest import ServerState

DATA = b"cached software tarball\n" * 4000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "software.tar.gz"
    path.write_bytes(DATA)
    return path


def _corrupt(path: Path) -> None:
    path.chmod(0o644)
    path.write_bytes(b"bit rot")


def test_miss_then_put_then_hit(tmp_path: Path, source: Path) -> None:
    cache = Cache(tmp_path / "cache")
    assert cache.get(SHA) is None
    assert not (tmp_path / "cache").exists()  # nothing is created before the first put

    entry = cache.put(source, SHA)

    assert entry == tmp_path / "cache" / SHA[:2] / SHA
    assert cache.get("sha256:" + SHA) == entry
    assert entry.read_bytes() == DATA
    assert entry.stat().st_mode & 0o222 == 0  # read-only
    assert os.listdir(entry.parent) == [SHA]


def test_a_corrupted_entry_is_removed_and_missed(tmp_path: Path, source: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entry = cache.put(source, SHA)
    _corrupt(entry)

    assert cache.get(SHA) is None
    assert not entry.exists()


def test_put_refuses_contents_that_do_not_match(tmp_path: Path, source: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(TransferError, match="mismatch"):
        cache.put(source, "a" * 64)
    assert os.listdir(tmp_path / "cache" / "aa") == []


def test_malformed_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="malformed"):
        Cache(tmp_path).get("../../etc/passwd")


def test_stage_in_fills_then_uses_the_cache(tmp_path: Path, source: Path) -> None:
    cache = Cache(tmp_path / "cache")
    stage_in(str(source), tmp_path / "first", checksum=SHA, cache=cache)
    assert cache.get(SHA) is not None

    source.unlink()  # the second copy can only come from the cache
    checksums = stage_in(str(source), tmp_path / "second", checksum=SHA, cache=cache)

    assert (tmp_path / "second").read_bytes() == DATA
    assert checksums.sha256 == SHA
    assert (tmp_path / "second").stat().st_mode & 0o200  # a writable copy, not the entry


def test_stage_in_over_http_downloads_once(http_server: ServerState, tmp_path: Path) -> None:
    (http_server.root / "sw.tar.gz").write_bytes(DATA)
    cache = Cache(tmp_path / "cache")
    for name in ("a", "b", "c"):
        stage_in(http_server.url("sw.tar.gz"), tmp_path / name, checksum=SHA, cache=cache)
        assert (tmp_path / name).read_bytes() == DATA
    assert http_server.count("GET", "sw.tar.gz") == 1


def test_stage_in_replaces_a_corrupted_entry(tmp_path: Path, source: Path) -> None:
    cache = Cache(tmp_path / "cache")
    _corrupt(cache.put(source, SHA))

    stage_in(str(source), tmp_path / "copy", checksum=SHA, cache=cache)

    assert (tmp_path / "copy").read_bytes() == DATA
    entry = cache.get(SHA)
    assert entry is not None
    assert entry.read_bytes() == DATA


def test_stage_in_without_a_sha256_leaves_the_cache_alone(tmp_path: Path, source: Path) -> None:
    cache = Cache(tmp_path / "cache")
    md5 = hashlib.md5(DATA).hexdigest()
    stage_in(str(source), tmp_path / "a", cache=cache)
    stage_in(str(source), tmp_path / "b", checksum="md5:" + md5, cache=cache)
    assert not (tmp_path / "cache").exists()


def test_a_bad_download_is_not_cached(tmp_path: Path, source: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(TransferError):
        stage_in(str(source), tmp_path / "a", checksum="b" * 64, cache=cache)
    assert not (tmp_path / "cache").exists()


def test_concurrent_fills_of_one_entry(tmp_path: Path) -> None:
    """Pilots filling the same entry at once each publish a whole file; none is corrupted."""
    big = os.urandom(3 << 20)
    digest = hashlib.sha256(big).hexdigest()
    (tmp_path / "big").write_bytes(big)
    cache = Cache(tmp_path / "cache")
    rounds, workers = 10, 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def fill(number: int) -> None:
        try:
            for turn in range(rounds):
                barrier.wait()
                if number % 2:
                    cache.put(tmp_path / "big", digest)
                else:
                    dest = tmp_path / f"out-{number}-{turn}"
                    stage_in(str(tmp_path / "big"), dest, checksum=digest, cache=cache)
                    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
                    dest.unlink()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    entry = cache.get(digest)
    assert entry is not None
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == digest
    assert os.listdir(entry.parent) == [digest]  # no temporary files left behind
