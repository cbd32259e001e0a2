"""``frazil config show | edit | diff | versions`` and ``frazil delete``: the real program
against a real server on loopback, the user's editor a small script."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml
from sqlalchemy import select

from frazil.cli.stored_config_commands import yaml_text
from frazil.store.schema import dataset_config, event
from tests.conftest import EXAMPLE


def _env(tmp_path: Path, url: str, token: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAZIL_", "VISUAL", "EDITOR"))}
    tmp = tmp_path / "tmp"  # where the edited files go (tempfile reads TMPDIR)
    tmp.mkdir(exist_ok=True)
    env.update(FRAZIL_HOME=str(tmp_path / "home"), FRAZIL_URL=url, FRAZIL_TOKEN=token,
               TMPDIR=str(tmp), COLUMNS="100", **extra)  # fmt: skip
    return env


def runner(tmp_path: Path, url: str, token: str):
    env = _env(tmp_path, url, token)

    def run(*args, ok=True, input=None, env_=None):
        result = subprocess.run(
            [sys.executable, "-m", "frazil", *map(str, args)], capture_output=True, text=True,
            env={**env, **(env_ or {})}, input=input,
            stdin=subprocess.DEVNULL if input is None else None, check=False, timeout=120,
        )  # fmt: skip
        if ok:
            assert result.returncode == 0, (args, result.stderr)
        else:
            assert result.returncode != 0, (args, result.stdout)
            assert "Traceback" not in result.stderr, result.stderr
        return result

    return run


def on_terminal(env: dict[str, str], *args: object, typed: str) -> subprocess.CompletedProcess:
    """Run the program with a terminal for its input, typing ``typed`` and Enter."""
    main, sub = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "frazil", *map(str, args)], stdin=sub, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
    finally:
        os.close(sub)
    try:
        os.write(main, typed.encode() + b"\n")
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(main)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def editor(tmp_path: Path, name: str, body: str) -> Path:
    """An editor: a Python script run on the file (its last argument)."""
    script = tmp_path / name
    head = f"#!{sys.executable}\nimport pathlib, sys\npath = pathlib.Path(sys.argv[-1])\n"
    script.write_text(head + textwrap.dedent(body))
    script.chmod(0o700)
    return script


#: an editor that changes the number of events, and notes which file it was given
MORE_EVENTS = """
    (path.parent.parent / "edited").write_text(str(path))
    path.write_text(path.read_text().replace("nevents: 2000", "nevents: 3000"))
"""


def _submitted(frazil, *extra: object) -> int:
    return int(
        json.loads(frazil("submit", EXAMPLE, "--jobs", 2, *extra, "--json").stdout)["dataset"]
    )


def test_show_prints_the_stored_config_as_yaml_in_its_order(server, tmp_path):
    url, tokens, db = server
    frazil = runner(tmp_path, url, tokens["alice"])
    d = _submitted(frazil, "--name", "sim")
    shown = frazil("config", "show", "sim").stdout
    with db.read() as conn:
        stored = conn.execute(select(dataset_config.c.config)).scalar_one()
    # the same data, every mapping's keys in the stored order
    assert json.dumps(yaml.safe_load(shown)) == json.dumps(json.loads(stored))
    assert list(yaml.safe_load(shown))[:3] == ["version", "description", "options"]
    assert json.loads(frazil("config", "show", str(d), "--json").stdout) == json.loads(stored)
    result = frazil("config", "show", "sim", "--version", 2, ok=False)
    assert result.stderr.strip() == "error dataset sim has no config version 2"
    result = frazil("config", "show", "nope", ok=False)
    assert result.stderr.strip() == "error no dataset 'nope'"


def test_yaml_keeps_order_blocks_and_unprintable_text():
    data = {"z": 1, "a": {"y": "line one\nline two\n", "b": "yes", "x": ["\x1b[31m", "ünï"]}}
    text = yaml_text(data)
    assert yaml.safe_load(text) == data
    assert json.dumps(yaml.safe_load(text)) == json.dumps(data)  # the order too
    assert "y: |\n    line one\n    line two\n" in text and "ünï" in text
    assert "\x1b" not in text  # written out, not sent to the terminal


def test_edit_stores_a_changed_file_as_the_next_version(server, tmp_path):
    url, tokens, _ = server
    frazil = runner(tmp_path, url, tokens["alice"])
    _submitted(frazil, "--name", "sim")
    edit = editor(tmp_path, "more.py", MORE_EVENTS)
    said = frazil("config", "edit", "sim", "-m", "more events", env_={"EDITOR": str(edit)}).stdout
    assert said.strip() == "dataset 1 (sim): config version 2 stored; checked every job (2)"
    edited = Path((tmp_path / "edited").read_text())
    assert edited.parent == tmp_path / "tmp" and edited.suffix == ".yaml"
    assert not edited.exists()  # stored: the file is gone
    versions = json.loads(frazil("config", "versions", "sim", "--json").stdout)
    assert [(v["version"], v["created_by"], v["comment"], v["current"]) for v in versions] == [
        (1, "user:alice", "submitted", False), (2, "user:alice", "more events", True),
    ]  # fmt: skip
    assert yaml.safe_load(frazil("config", "show", "sim").stdout)["steering"]["parameters"][
        "nevents"] == 3000  # fmt: skip
    listed = frazil("config", "versions", "sim").stdout.splitlines()
    assert listed[0].split() == ["version", "current", "created", "by", "comment"]
    assert listed[2].split()[:2] == ["2", "yes"] and listed[2].endswith("user:alice  more events")

    # $VISUAL before $EDITOR; an editor with arguments is split into words, never run by a shell
    marker = tmp_path / "marker"
    visual = f"'{edit}' --wait $(touch {marker})"
    result = frazil("config", "edit", "sim", env_={"VISUAL": visual, "EDITOR": "false"})
    assert result.stdout.strip() == "dataset 1 (sim): no change; nothing stored"  # 3000 already
    assert not marker.exists()
    result = frazil("config", "edit", "sim", env_={"EDITOR": "true"})
    assert result.stdout.strip() == "dataset 1 (sim): no change; nothing stored"
    assert len(json.loads(frazil("config", "versions", "sim", "--json").stdout)) == 2
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_edited_file_is_private(server, tmp_path):
    url, tokens, _ = server
    frazil = runner(tmp_path, url, tokens["alice"])
    _submitted(frazil)
    look = editor(
        tmp_path,
        "look.py",
        """
        import stat
        (path.parent.parent / "mode").write_text(oct(stat.S_IMODE(path.stat().st_mode)))
        (path.parent.parent / "head").write_text(path.read_text().splitlines()[0])
    """,
    )
    frazil("config", "edit", 1, env_={"EDITOR": str(look)})
    assert (tmp_path / "mode").read_text() == "0o600"
    assert (tmp_path / "head").read_text().startswith("# dataset 1, config version 1: save")


def test_a_rejected_edit_is_shown_by_line_and_may_be_edited_again(server, tmp_path):
    url, tokens, _ = server
    frazil = runner(tmp_path, url, tokens["alice"])
    _submitted(frazil, "--name", "sim")
    fixes = editor(
        tmp_path,
        "fixes.py",
        """
        lines = path.read_text().splitlines(keepends=True)
        calls = path.parent.parent / "calls"
        n = int(calls.read_text()) + 1 if calls.exists() else 1
        calls.write_text(str(n))
        at = next(i for i, line in enumerate(lines) if "max_failures:" in line)
        lines[at] = "  max_failures: lots\\n" if n == 1 else "  max_failures: 5\\n"
        (path.parent.parent / "where").write_text(f"{path}:{at + 1}")
        path.write_text("".join(lines))
    """,
    )
    result = frazil("config", "edit", "sim", input="y\n", env_={"EDITOR": str(fixes)})
    where = (tmp_path / "where").read_text()
    assert f"error {where}: options.max_failures: must be a whole number" in result.stderr
    assert "edit again?" in result.stderr
    assert result.stdout.strip().startswith("dataset 1 (sim): config version 2 stored")
    assert (tmp_path / "calls").read_text() == "2"
    assert list((tmp_path / "tmp").iterdir()) == []

    # given up: nothing stored, and the edit is kept where it was
    (tmp_path / "calls").unlink()
    result = frazil("config", "edit", "sim", input="n\n", env_={"EDITOR": str(fixes)}, ok=False)
    (kept,) = (tmp_path / "tmp").iterdir()
    assert result.returncode == 1 and f"your edit is kept in {kept}" in result.stderr
    assert "max_failures: lots" in kept.read_text()
    assert len(json.loads(frazil("config", "versions", "sim", "--json").stdout)) == 2
    kept.unlink()

    # a change the server refuses for the dataset (a task renamed): the same
    rename = editor(
        tmp_path,
        "rename.py",
        """
        path.write_text(path.read_text().replace("name: level2", "name: level3"))
    """,
    )
    result = frazil("config", "edit", "sim", input="n\n", env_={"EDITOR": str(rename)}, ok=False)
    assert "must keep the task names" in result.stderr and "your edit is kept" in result.stderr


def test_an_edit_that_another_version_overtook_is_kept_not_stored(server, tmp_path):
    url, tokens, _ = server
    frazil = runner(tmp_path, url, tokens["alice"])
    _submitted(frazil, "--name", "sim")
    race = editor(
        tmp_path,
        "race.py",
        f"""
        from frazil.client import Client
        with Client({url!r}, {tokens["root"]!r}, retry_for=0) as other:
            other.edit_config("sim", pathlib.Path({str(EXAMPLE)!r}).read_text().replace(
                "nevents: 2000", "nevents: 2500"), "meanwhile")
        path.write_text(path.read_text().replace("nevents: 2000", "nevents: 3000"))
    """,
    )
    result = frazil("config", "edit", "sim", input="y\n", env_={"EDITOR": str(race)}, ok=False)
    assert "at config version 2, not 1" in result.stderr
    assert "version 2 was stored meanwhile: see frazil config diff 1" in result.stderr
    (kept,) = (tmp_path / "tmp").iterdir()
    assert "nevents: 3000" in kept.read_text() and f"kept in {kept}" in result.stderr
    versions = json.loads(frazil("config", "versions", "sim", "--json").stdout)
    assert [(v["version"], v["created_by"]) for v in versions] == [
        (1, "user:alice"), (2, "admin:root"),
    ]  # fmt: skip


def test_an_editor_that_fails_or_is_missing_stores_nothing(server, tmp_path):
    url, tokens, _ = server
    frazil = runner(tmp_path, url, tokens["alice"])
    _submitted(frazil)
    result = frazil("config", "edit", 1, env_={"EDITOR": "false"}, ok=False)
    assert result.stderr.strip() == "error the editor 'false' exited with status 1"
    result = frazil(
        "config", "edit", 1, env_={"EDITOR": str(tmp_path / "no-such-editor")}, ok=False
    )
    assert result.stderr.startswith("error cannot start the editor")
    assert result.stderr.count("\n") == 1
    assert list((tmp_path / "tmp").iterdir()) == []
    result = frazil("config", "edit", 1, env_={"EDITOR": "'unbalanced"}, ok=False)
    assert "$EDITOR cannot be split into words" in result.stderr
    assert len(json.loads(frazil("config", "versions", 1, "--json").stdout)) == 1


def test_diff_compares_two_versions(server, tmp_path):
    url, tokens, _ = server
    frazil = runner(tmp_path, url, tokens["alice"])
    _submitted(frazil, "--name", "sim")
    result = frazil("config", "diff", "sim")
    assert (result.stdout, result.stderr.strip()) == (
        "", "nothing to compare: dataset 1 (sim) has one config version only",
    )  # fmt: skip
    frazil("config", "edit", "sim", env_={"EDITOR": str(editor(tmp_path, "m.py", MORE_EVENTS))})
    lines = frazil("config", "diff", "sim").stdout.splitlines()
    assert lines[:2] == ["--- dataset 1 config v1", "+++ dataset 1 config v2"]
    assert [line for line in lines[2:] if line[:1] in "+-"] == [
        "-    nevents: 2000", "+    nevents: 3000",
    ]  # fmt: skip
    assert frazil("config", "diff", "sim", 1).stdout.splitlines() == lines
    backwards = frazil("config", "diff", "sim", 2, 1).stdout
    assert "-    nevents: 3000\n+    nevents: 2000\n" in backwards
    result = frazil("config", "diff", "sim", 2, 2)
    assert result.stdout == "" and "nothing to compare: version 2 against itself" in result.stderr
    result = frazil("config", "diff", "sim", 1, 9, ok=False)
    assert result.stderr.strip() == "error dataset 1 has no config version 9"


def test_delete_asks_for_the_name_on_a_terminal_and_checks_who_asks(server, tmp_path):
    url, tokens, db = server
    alice = runner(tmp_path, url, tokens["alice"])
    d = _submitted(alice, "--name", "sim")
    other = _submitted(alice, "--name", "other")
    # no terminal to ask on: one line, nothing deleted
    result = alice("delete", "sim", ok=False)
    assert (
        result.stderr.strip()
        == "error frazil delete asks for confirmation on a terminal: give --yes"
    )
    # another user may not, even with --yes
    result = runner(tmp_path, url, tokens["bob"])("delete", "sim", "--yes", ok=False)
    assert result.stderr.strip() == (
        "error no control right on dataset 1: dataset 1 belongs to 'alice': 'bob' is not its "
        "owner, not a member of its group with write permission, not an administrator"
    )
    result = on_terminal(_env(tmp_path, url, tokens["bob"]), "delete", "sim", typed="sim")
    assert result.returncode == 1 and "belongs to 'alice'" in result.stderr
    # the owner, on a terminal: a wrong answer deletes nothing, the alias (or id) deletes
    env = _env(tmp_path, url, tokens["alice"])
    result = on_terminal(env, "delete", "sim", typed="other")
    assert result.returncode == 1, result.stderr
    assert "dataset 1 (sim) of alice: processing, 0 of 2 jobs complete" in result.stderr
    assert "error not deleted: 'other' is not dataset 1 (sim)'s id or alias" in result.stderr
    assert [x["id"] for x in json.loads(alice("datasets", "--json").stdout)] == [other, d]
    result = on_terminal(env, "delete", "sim", "-r", "wrong seeds", typed="sim")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deleted dataset 1 (sim): 2 jobs, 12 tasks, 0 attempts"
    assert alice("status", "sim", ok=False).stderr.strip() == "error no dataset 'sim'"
    # an administrator may delete anyone's, without asking
    root = runner(tmp_path, url, tokens["root"])
    said = root("delete", other, "--yes").stdout
    assert said.strip() == "deleted dataset 2 (other): 2 jobs, 12 tasks, 0 attempts"
    assert json.loads(alice("datasets", "--json").stdout) == []
    with db.read() as conn:
        assert conn.execute(select(dataset_config)).all() == []
        deletions = conn.execute(
            select(event.c.dataset_id, event.c.actor, event.c.reason)
            .where(event.c.action == "delete").order_by(event.c.id)
        ).all()  # fmt: skip
    assert [(e.dataset_id, e.actor) for e in deletions] == [
        (d, "user:alice"),
        (other, "admin:root"),
    ]
    assert deletions[0].reason.endswith(": wrong seeds")
