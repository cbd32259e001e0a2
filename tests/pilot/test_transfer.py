"""Staging through paths and file:// URLs, name safety, and the protocol registry."""

import hashlib
import os
from pathlib import Path

import pytest

from frazil.errors import TransferError
from frazil.pilot.protocols import SourceMissing, file_url_path, redact
from frazil.pilot.transfer import (
    default_local_name,
    register_protocol,
    resolve,
    safe_local_name,
    stage_in,
    stage_out,
    unregister_protocol,
)

DATA = b"frazil test data\n" * 1000
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A site data directory holding ``runs/run1.dat``."""
    root = tmp_path / "store"
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "run1.dat").write_bytes(DATA)
    return root


@pytest.fixture
def task(tmp_path: Path) -> Path:
    directory = tmp_path / "task"
    directory.mkdir()
    return directory


def test_stage_in_from_an_absolute_path(store: Path, task: Path) -> None:
    checksums = stage_in(str(store / "runs" / "run1.dat"), task / "in.dat", checksum=SHA)

    assert (task / "in.dat").read_bytes() == DATA
    assert (checksums.size, checksums.sha256, checksums.md5) == (len(DATA), SHA, None)


def test_stage_in_from_a_relative_path_under_a_base(store: Path, task: Path) -> None:
    checksums = stage_in("runs/run1.dat", task / "in.dat", base=store, checksum="md5:" + MD5)

    assert (task / "in.dat").read_bytes() == DATA
    assert checksums.md5 == MD5
    assert checksums.sha256 == SHA


def test_stage_in_from_a_file_url(store: Path, task: Path) -> None:
    url = (store / "runs" / "run1.dat").as_uri()
    stage_in(url, task / "in.dat", checksum=MD5, checksum_type="md5")
    assert (task / "in.dat").read_bytes() == DATA


def test_a_wrong_checksum_leaves_no_file_behind(store: Path, task: Path) -> None:
    wrong = "f" * 64
    with pytest.raises(TransferError, match=f"expected {wrong}, got {SHA}"):
        stage_in("runs/run1.dat", task / "in.dat", base=store, checksum=wrong)
    assert list(task.iterdir()) == []


def test_a_failed_stage_in_keeps_the_previous_file(store: Path, task: Path) -> None:
    (task / "in.dat").write_bytes(b"old")
    with pytest.raises(TransferError):
        stage_in("runs/run1.dat", task / "in.dat", base=store, checksum="0" * 64)
    assert (task / "in.dat").read_bytes() == b"old"
    assert [p.name for p in task.iterdir()] == ["in.dat"]


def test_a_missing_source_is_source_missing(store: Path, task: Path) -> None:
    with pytest.raises(SourceMissing, match=r"nope.dat"):
        stage_in("runs/nope.dat", task / "in.dat", base=store)
    assert list(task.iterdir()) == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "runs/../../outside", "..", "file:../secret"])
def test_relative_paths_may_not_escape_their_base(store: Path, task: Path, name: str) -> None:
    with pytest.raises(TransferError, match="escapes"):
        stage_in(name, task / "x", base=store)
    with pytest.raises(TransferError, match="escapes"):
        stage_out(store / "runs" / "run1.dat", name, base=task)


def test_dot_dot_inside_the_base_is_fine(store: Path, task: Path) -> None:
    stage_in("runs/../runs/run1.dat", task / "in.dat", base=store)
    assert (task / "in.dat").read_bytes() == DATA


def test_a_file_url_naming_another_host_is_refused(task: Path) -> None:
    with pytest.raises(TransferError, match="remote host"):
        stage_in("file://elsewhere/etc/passwd", task / "x")


def test_an_unknown_scheme_names_itself_and_the_known_ones(task: Path) -> None:
    with pytest.raises(TransferError) as caught:
        stage_in("gsiftp://gridftp.example.org/data/x", task / "x")
    assert "'gsiftp'" in str(caught.value)
    assert "file, http, https" in str(caught.value)
    assert list(task.iterdir()) == []


def test_stage_out_to_a_file_url_creates_directories(tmp_path: Path, task: Path) -> None:
    (task / "out.dat").write_bytes(DATA)
    target = tmp_path / "archive" / "2024" / "out.dat"

    checksums = stage_out(task / "out.dat", target.as_uri(), md5=True)

    assert target.read_bytes() == DATA
    assert (checksums.sha256, checksums.md5, checksums.size) == (SHA, MD5, len(DATA))
    assert [p.name for p in target.parent.iterdir()] == ["out.dat"]


def test_stage_out_respects_the_umask(tmp_path: Path, task: Path) -> None:
    (task / "out.dat").write_bytes(DATA)
    stage_out(task / "out.dat", "out.dat", base=tmp_path / "archive")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "archive" / "out.dat").stat().st_mode & 0o777 == 0o666 & ~umask


def test_stage_out_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceMissing):
        stage_out(tmp_path / "nothing", (tmp_path / "x").as_uri())
    assert not (tmp_path / "x").exists()


def test_stage_out_of_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="not a regular file"):
        stage_out(tmp_path, (tmp_path / "x").as_uri())


def test_resolve_joins_relative_paths_to_a_base_url() -> None:
    assert resolve("runs/a b.dat", "http://data.example.org/store/") == (
        "http",
        "http://data.example.org/store/runs/a%20b.dat",
    )
    assert resolve("/abs/x", "http://data.example.org/store")[0] == "file"
    with pytest.raises(TransferError, match="escapes"):
        resolve("../x", "http://data.example.org/store")


def test_resolve_of_plain_paths(tmp_path: Path) -> None:
    assert resolve(str(tmp_path / "a"), None) == ("file", (tmp_path / "a").as_uri())
    assert file_url_path(resolve("b/c", tmp_path)[1]) == tmp_path / "b" / "c"
    assert file_url_path(resolve("b", tmp_path.as_uri())[1]) == tmp_path / "b"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "/etc/passwd", "a\\b", "a\0b"])
def test_unsafe_local_names_are_refused(name: str) -> None:
    with pytest.raises(TransferError, match="unsafe local file name"):
        safe_local_name(name)


def test_safe_and_default_local_names() -> None:
    assert safe_local_name("run1.i3.zst") == "run1.i3.zst"
    assert safe_local_name(".hidden") == ".hidden"
    assert default_local_name("http://h/data/file%20one.i3?token=x") == "file one.i3"
    with pytest.raises(TransferError):
        default_local_name("http://h/data/..")


def test_redact_hides_passwords_and_queries() -> None:
    shown = redact("https://user:hunter2@host/path/f.dat?X-Amz-Signature=abc")
    assert "hunter2" not in shown
    assert "abc" not in shown
    assert shown.startswith("https://user:***@host/path/f.dat")


class MemoryProtocol:
    """A protocol plugged in by a test: files kept in a dict, keyed by URL."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def get(self, url: str, dest: Path) -> None:
        if url not in self.files:
            raise SourceMissing(url)
        dest.write_bytes(self.files[url])

    def put(self, src: Path, url: str) -> None:
        self.files[url] = src.read_bytes()


def test_registered_protocols_are_used_by_scheme(task: Path) -> None:
    memory = MemoryProtocol()
    assert register_protocol("mem://", memory) is None
    (task / "out.dat").write_bytes(DATA)
    try:
        assert stage_out(task / "out.dat", "MEM://bucket/out.dat").sha256 == SHA
        assert stage_in("MEM://bucket/out.dat", task / "back.dat", checksum=SHA).size == len(DATA)
        stage_out(task / "out.dat", "runs/out.dat", base="mem://bucket/")
    finally:
        assert unregister_protocol("mem") is memory
    assert memory.files == {"MEM://bucket/out.dat": DATA, "mem://bucket/runs/out.dat": DATA}
    assert (task / "back.dat").read_bytes() == DATA
    with pytest.raises(TransferError, match="unsupported URL scheme 'mem'"):
        stage_in("mem://bucket/out.dat", task / "x")
