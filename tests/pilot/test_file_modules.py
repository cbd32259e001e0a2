"""CopyFiles, MakeTarball and UnpackTarball on real files; unsafe tarballs are refused."""

import io
import tarfile
from pathlib import Path

import pytest

from frazil.pilot.modules import CopyFiles, MakeTarball, ModuleError, UnpackTarball


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A task directory with a file and a small tree."""
    (tmp_path / "notes.txt").write_text("notes\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "a.txt").write_text("a\n")
    (tmp_path / "tree" / "sub" / "b.bin").write_bytes(bytes(range(256)))
    return tmp_path


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_copy_files_and_directories(work: Path) -> None:
    stats: dict[str, float] = {}
    CopyFiles({"files": ["notes.txt", "tree"], "dest": "copies"}, workdir=work).run(stats)

    assert _tree(work / "copies") == {
        "notes.txt": b"notes\n",
        "tree/a.txt": b"a\n",
        "tree/sub/b.bin": bytes(range(256)),
    }
    assert stats == {"files_copied": 3.0, "bytes_copied": 6.0 + 2 + 256}


def test_copy_a_single_file_given_as_a_string(work: Path) -> None:
    CopyFiles({"files": "notes.txt", "dest": str(work / "out")}, workdir=work).run({})
    assert (work / "out" / "notes.txt").read_text() == "notes\n"


def test_copy_of_a_missing_file_fails(work: Path) -> None:
    module = CopyFiles({"files": ["nope"], "dest": "copies"}, workdir=work)
    with pytest.raises(ModuleError, match=r"no such file or directory: .*nope"):
        module.run({})


def test_copy_files_requires_its_parameters() -> None:
    with pytest.raises(ModuleError, match=r"missing required parameter.*dest"):
        CopyFiles({"files": ["a"]})


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar"])
def test_tarball_round_trip(work: Path, suffix: str) -> None:
    stats: dict[str, float] = {}
    output = f"out/packed{suffix}"
    MakeTarball({"paths": ["tree", "notes.txt"], "output": output}, workdir=work).run(stats)
    assert stats["tarball_bytes"] == (work / output).stat().st_size
    UnpackTarball({"tarball": output, "dest": "unpacked"}, workdir=work).run(stats)

    assert _tree(work / "unpacked") == {
        "notes.txt": b"notes\n",
        "tree/a.txt": b"a\n",
        "tree/sub/b.bin": bytes(range(256)),
    }
    assert stats["files_unpacked"] == 3.0
    assert sorted(p.name for p in (work / "out").iterdir()) == [f"packed{suffix}"]


def test_packing_the_directory_holding_the_tarball(work: Path) -> None:
    MakeTarball({"paths": ["."], "output": "all.tar.gz"}, workdir=work).run({})
    with tarfile.open(work / "all.tar.gz") as tar:
        names = tar.getnames()
    assert f"{work.name}/notes.txt" in names
    assert not any(".part" in name or "all.tar.gz" in name for name in names)


def test_an_unknown_tarball_suffix_is_refused(work: Path) -> None:
    with pytest.raises(ModuleError, match=r"should end in one of .tar.gz"):
        MakeTarball({"paths": ["tree"], "output": "tree.zip"}, workdir=work).run({})


def test_packing_a_missing_path_leaves_no_tarball(work: Path) -> None:
    before = set(work.iterdir())
    with pytest.raises(ModuleError, match="no such file"):
        MakeTarball({"paths": ["tree", "nope"], "output": "t.tar.gz"}, workdir=work).run({})
    assert set(work.iterdir()) == before


def _evil_tarball(path: Path, *members: tarfile.TarInfo) -> str:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(_file("fine.txt", b"fine"), io.BytesIO(b"fine"))
        for member in members:
            data = io.BytesIO(b"evil") if member.isfile() else None
            tar.addfile(member, data)
    return str(path)


def _file(name: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


@pytest.mark.parametrize(
    ("member", "match"),
    [
        (_file("../evil", b"evil"), "'../evil', which points outside"),
        (_file("sub/../../evil", b"evil"), "points outside"),
        (_file("/tmp/frazil-evil", b"evil"), "absolute path"),
        (_link("passwd", "/etc/passwd"), "link 'passwd' to the absolute path"),
        (_link("up", "../../evil"), "outside the target directory"),
        (_link("hard", "../evil", tarfile.LNKTYPE), "outside the target directory"),
        (_device("null"), "device file"),
    ],
)
def test_unsafe_tarballs_are_refused_before_anything_is_written(
    tmp_path: Path, member: tarfile.TarInfo, match: str
) -> None:
    tarball = _evil_tarball(tmp_path / "evil.tar.gz", member)
    dest = tmp_path / "work" / "dest"

    with pytest.raises(ModuleError, match=match):
        UnpackTarball({"tarball": tarball, "dest": str(dest)}).run({})

    assert list(dest.iterdir()) == []
    assert not (tmp_path / "work" / "evil").exists()
    assert not (tmp_path / "evil").exists()


def test_links_inside_the_target_are_allowed(tmp_path: Path) -> None:
    tarball = _evil_tarball(
        tmp_path / "ok.tar.gz", _link("alias.txt", "fine.txt"), _link("d/up.txt", "../fine.txt")
    )
    UnpackTarball({"tarball": tarball, "dest": "out"}, workdir=tmp_path).run({})
    assert (tmp_path / "out" / "alias.txt").read_text() == "fine"
    assert (tmp_path / "out" / "d" / "up.txt").read_text() == "fine"


def test_unpacking_garbage_is_a_module_error(tmp_path: Path) -> None:
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ModuleError, match="cannot unpack"):
        UnpackTarball({"tarball": "junk.tar.gz"}, workdir=tmp_path).run({})
