import hashlib
from pathlib import Path

import pytest

from frazil.errors import TransferError
from frazil.pilot.checksum import CHUNK_SIZE, Checksums, compute, parse_checksum, verify


def _data(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 12345])
def test_compute_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = _data(size)
    path = tmp_path / "f"
    path.write_bytes(data)

    checksums = compute(path, md5=True)

    assert checksums == Checksums(
        size=size,
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
    )


def test_md5_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert compute(path).md5 is None


def test_verify_accepts_prefixed_and_bare_digests_in_any_case(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    sha = hashlib.sha256(b"hello").hexdigest()
    md5 = hashlib.md5(b"hello").hexdigest()

    assert verify(path, "sha256", sha).sha256 == sha
    assert verify(path, "sha256", f"sha256:{sha.upper()}").size == 5
    assert verify(path, "md5", md5).md5 == md5
    assert verify(path, "sha256", f"md5:{md5}").md5 == md5  # the prefix wins


def test_verify_mismatch_names_file_type_and_both_values(tmp_path: Path) -> None:
    path = tmp_path / "data.i3"
    path.write_bytes(b"hello")
    wrong = "0" * 64
    actual = hashlib.sha256(b"hello").hexdigest()

    with pytest.raises(TransferError) as caught:
        verify(path, "sha256", wrong)

    message = str(caught.value)
    assert "data.i3" in message
    assert "sha256" in message
    assert wrong in message
    assert actual in message


def test_verify_of_a_missing_file_is_a_transfer_error(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="nothere"):
        verify(tmp_path / "nothere", "sha256", "0" * 64)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("sha1:" + "0" * 40, "unknown checksum type 'sha1'; known: md5, sha256"),
        ("sha256:1234", "malformed"),
        ("z" * 64, "malformed"),
    ],
)
def test_bad_checksum_strings_are_refused(value: str, match: str) -> None:
    with pytest.raises(TransferError, match=match):
        parse_checksum(value)


def test_parse_checksum_splits_and_lowercases() -> None:
    assert parse_checksum("MD5:" + "A" * 32) == ("md5", "a" * 32)
    assert parse_checksum("b" * 32, "md5") == ("md5", "b" * 32)
