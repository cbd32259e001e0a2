"""Transfers against a real HTTP server on loopback (see conftest)."""

import hashlib
import socket
from pathlib import Path

import pytest

from frazil.errors import TransferError
from frazil.pilot.httptransfer import HttpProtocol
from frazil.pilot.protocols import SourceMissing
from frazil.pilot.transfer import register_protocol, stage_in, stage_out
from tests.pilot.conftest import ServerState

DATA = bytes(range(256)) * 5000  # 1.2 MiB: more than one chunk
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


def test_stage_in_over_http(http_server: ServerState, tmp_path: Path) -> None:
    (http_server.root / "run1.dat").write_bytes(DATA)

    checksums = stage_in(http_server.url("run1.dat"), tmp_path / "in.dat", checksum="sha256:" + SHA)

    assert (tmp_path / "in.dat").read_bytes() == DATA
    assert (checksums.sha256, checksums.size) == (SHA, len(DATA))


def test_stage_in_over_http_with_md5(http_server: ServerState, tmp_path: Path) -> None:
    (http_server.root / "run1.dat").write_bytes(DATA)
    checksums = stage_in(http_server.url("run1.dat"), tmp_path / "in.dat", checksum="md5:" + MD5)
    assert checksums.md5 == MD5


def test_a_wrong_checksum_over_http_leaves_nothing(
    http_server: ServerState, tmp_path: Path
) -> None:
    (http_server.root / "run1.dat").write_bytes(DATA)
    task = tmp_path / "task"
    task.mkdir()

    with pytest.raises(TransferError, match="sha256 checksum mismatch"):
        stage_in(http_server.url("run1.dat"), task / "in.dat", checksum="1" * 64)

    assert list(task.iterdir()) == []


def test_relative_names_under_a_base_url(http_server: ServerState, tmp_path: Path) -> None:
    (http_server.root / "runs").mkdir()
    (http_server.root / "runs" / "run1.dat").write_bytes(DATA)
    stage_in("runs/run1.dat", tmp_path / "in.dat", base=http_server.base_url + "/", checksum=SHA)
    assert (tmp_path / "in.dat").read_bytes() == DATA


def test_404_is_source_missing_without_retries(
    http_server: ServerState, tmp_path: Path, fast_http: list[float]
) -> None:
    with pytest.raises(SourceMissing, match="HTTP 404"):
        stage_in(http_server.url("missing.dat"), tmp_path / "in.dat")
    assert http_server.count("GET", "missing.dat") == 1
    assert fast_http == []
    assert list(tmp_path.iterdir()) == [http_server.root]


def test_two_503s_then_success(
    http_server: ServerState, tmp_path: Path, fast_http: list[float]
) -> None:
    (http_server.root / "run1.dat").write_bytes(DATA)
    http_server.failures["/run1.dat"] = [503, 503]

    stage_in(http_server.url("run1.dat"), tmp_path / "in.dat", checksum=SHA)

    assert (tmp_path / "in.dat").read_bytes() == DATA
    assert http_server.count("GET", "run1.dat") == 3
    assert fast_http == [0.5, 1.0]  # exponential backoff


def test_retries_are_bounded(
    http_server: ServerState, tmp_path: Path, fast_http: list[float]
) -> None:
    http_server.failures["/run1.dat"] = [500] * 10

    with pytest.raises(TransferError, match="failed after 4 attempts: HTTP 500"):
        stage_in(http_server.url("run1.dat"), tmp_path / "in.dat")

    assert http_server.count("GET", "run1.dat") == 4
    assert not (tmp_path / "in.dat").exists()


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    handler = HttpProtocol(retries=2, backoff=0.1, sleep=sleeps.append)

    with pytest.raises(TransferError, match="failed after 3 attempts: ConnectError"):
        handler.get(f"http://127.0.0.1:{port}/x", tmp_path / "x")
    assert sleeps == [0.1, 0.2]


def test_a_read_timeout_is_retried_then_reported(http_server: ServerState, tmp_path: Path) -> None:
    (http_server.root / "slow.dat").write_bytes(DATA)
    http_server.delays["/slow.dat"] = 0.5
    handler = HttpProtocol(retries=1, timeout=0.1, backoff=0, sleep=lambda _: None)

    with pytest.raises(TransferError, match="failed after 2 attempts: ReadTimeout"):
        handler.get(http_server.url("slow.dat"), tmp_path / "x")


def test_stage_out_with_put(http_server: ServerState, tmp_path: Path) -> None:
    (tmp_path / "out.dat").write_bytes(DATA)

    checksums = stage_out(tmp_path / "out.dat", http_server.url("results/out.dat"), md5=True)

    assert (http_server.root / "results" / "out.dat").read_bytes() == DATA
    assert (checksums.sha256, checksums.md5, checksums.size) == (SHA, MD5, len(DATA))


def test_put_is_retried_with_the_whole_body(
    http_server: ServerState, tmp_path: Path, fast_http: list[float]
) -> None:
    (tmp_path / "out.dat").write_bytes(DATA)
    http_server.failures["/out.dat"] = [502]

    stage_out(tmp_path / "out.dat", http_server.url("out.dat"))

    assert (http_server.root / "out.dat").read_bytes() == DATA
    assert http_server.count("PUT", "out.dat") == 2


def test_put_refused_with_4xx_is_not_retried(
    http_server: ServerState, tmp_path: Path, fast_http: list[float]
) -> None:
    (tmp_path / "out.dat").write_bytes(DATA)
    http_server.failures["/out.dat"] = [403]

    with pytest.raises(TransferError, match=r"PUT .*/out.dat: HTTP 403"):
        stage_out(tmp_path / "out.dat", http_server.url("out.dat"))

    assert http_server.count("PUT", "out.dat") == 1
    assert fast_http == []


def test_errors_do_not_show_credentials(http_server: ServerState, tmp_path: Path) -> None:
    url = http_server.url("missing.dat").replace("http://", "http://user:hunter2@")
    with pytest.raises(TransferError) as caught:
        stage_in(url + "?token=s3cr3t", tmp_path / "x")
    assert "hunter2" not in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_the_default_handlers_are_restored_after_fast_http(fast_http: list[float]) -> None:
    handler = HttpProtocol()
    previous = register_protocol("http", handler)
    assert previous is not None
    assert register_protocol("http", previous) is handler


def test_https_with_a_ca_bundle(
    https_server: ServerState, certificate: Path, tmp_path: Path
) -> None:
    (https_server.root / "run1.dat").write_bytes(DATA)
    (tmp_path / "out.dat").write_bytes(DATA)
    previous = register_protocol("https", HttpProtocol(verify=str(certificate)))
    try:
        stage_in(https_server.url("run1.dat"), tmp_path / "in.dat", checksum=SHA)
        stage_out(tmp_path / "out.dat", https_server.url("up/out.dat"))
    finally:
        assert previous is not None
        register_protocol("https", previous)
    assert (tmp_path / "in.dat").read_bytes() == DATA
    assert (https_server.root / "up" / "out.dat").read_bytes() == DATA


def test_https_refuses_an_unknown_certificate(https_server: ServerState, tmp_path: Path) -> None:
    (https_server.root / "run1.dat").write_bytes(DATA)
    handler = HttpProtocol(retries=0)
    with pytest.raises(TransferError, match="CERTIFICATE_VERIFY_FAILED"):
        handler.get(https_server.url("run1.dat"), tmp_path / "in.dat")
