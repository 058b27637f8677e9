"""What the phone writes and serves (issue 25): only its own new files, never through a link.

``pipecat_wsclient.files`` is attacked directly (links planted where a file
is to go, a run folder swapped for a link, a file swapped after it was
written), then the phone as a whole: a ``--save`` folder with links planted
where calls' files went before, two runs into one folder, files in the run
folder that the phone did not write, or that were swapped for a link to a
secret. The calls are real (a Python page, a ``raw`` echo bot).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

import pipecat_wsclient.files as files_module
from pipecat_wsclient.files import (
    FileId,
    RunFolder,
    UnsafePathError,
    check_own_folder,
    create_run_folder,
    open_written,
    write_new,
)
from pipecat_wsclient.phone import PhoneOptions, PhoneServer

RATE = 8000


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- files.py ---------------------------------------------------------------------


def test_write_new_refuses_an_existing_file_or_any_link_and_names_the_path(tmp_path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    existing = tmp_path / "existing"
    existing.write_bytes(b"earlier")
    link = tmp_path / "link"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "would-be-created")
    for path in (existing, link, dangling):
        with pytest.raises(UnsafePathError) as refused:
            write_new(path, b"attack")
        assert str(path) in str(refused.value)
    assert victim.read_bytes() == b"precious" and existing.read_bytes() == b"earlier"
    assert not (tmp_path / "would-be-created").exists()
    written = write_new(tmp_path / "new", b"ours")
    assert (tmp_path / "new").read_bytes() == b"ours" and mode(tmp_path / "new") == 0o600
    assert written == FileId.of(os.stat(tmp_path / "new"))


def test_run_folders_are_fresh_private_and_checked(tmp_path) -> None:
    parent = tmp_path / "save" / "deeper"
    first, second = create_run_folder(parent), create_run_folder(parent)
    assert first != second and first.parent == parent == second.parent
    assert first.name.startswith("run-") and mode(first) == 0o700
    # A link or an open folder is not a run folder of ours.
    (tmp_path / "open").mkdir(mode=0o755)
    os.chmod(tmp_path / "open", 0o755)
    (tmp_path / "linked").symlink_to(first)
    for path in (tmp_path / "open", tmp_path / "linked"):
        with pytest.raises(UnsafePathError):
            check_own_folder(path)


def test_a_planted_name_for_the_run_folder_is_skipped(tmp_path, monkeypatch) -> None:
    """Even a guessed run folder name (a link planted there) is never used."""
    victim = tmp_path / "victim"
    victim.mkdir()
    names = iter(["deadbeef", "cafef00d"])
    monkeypatch.setattr(files_module.secrets, "token_hex", lambda n: next(names))
    monkeypatch.setattr(files_module.time, "strftime", lambda fmt: "20260101-000000")
    (tmp_path / "run-20260101-000000-deadbeef").symlink_to(victim)
    run = create_run_folder(tmp_path)
    assert run.name == "run-20260101-000000-cafef00d" and not run.is_symlink()


def test_a_run_folder_swapped_for_a_link_does_not_redirect_what_follows(tmp_path) -> None:
    """In a shared parent (no sticky bit) another user could rename our folder and put a
    link in its place: what we write next still goes into our folder, held open."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with RunFolder.create(tmp_path / "save") as run:
        run.make_folder("1")
        moved = tmp_path / "moved"
        run.path.rename(moved)
        run.path.symlink_to(elsewhere)
        run.write_new("1/recording.wav", b"ours")
    assert list(elsewhere.iterdir()) == []
    assert (moved / "1" / "recording.wav").read_bytes() == b"ours"


def test_a_written_file_is_read_back_only_if_it_is_the_same_file(tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    with RunFolder.create(tmp_path / "save") as run:
        written = run.write_new("a.png", b"png")
        with run.open_written("a.png", written) as file:
            assert file.read() == b"png"
        (run.path / "a.png").unlink()
        (run.path / "a.png").symlink_to(secret)
        with pytest.raises(UnsafePathError):
            run.open_written("a.png", written)
        (run.path / "a.png").unlink()
        (run.path / "a.png").write_bytes(b"another file")
        with pytest.raises(UnsafePathError):
            run.open_written("a.png", written)
        with pytest.raises(UnsafePathError):
            run.write_new("../escape", b"x")
    with pytest.raises(UnsafePathError):
        open_written(secret, written)


# -- the phone ------------------------------------------------------------------


async def echo(ws) -> None:
    async for message in ws:
        if isinstance(message, bytes):
            await ws.send(message)


async def one_call(server: PhoneServer) -> dict:
    """A short call from a Python page (1 s of a tone, then a hang-up); its ``ended``."""
    url = server.address("/call").replace("http://", "ws://")
    tone = (b"\x00\x10\x00\xf0" * 80) * 50  # 1 s, loud enough to be speech-like
    async with connect(url) as ws:
        for i in range(0, len(tone), 320):
            await ws.send(tone[i : i + 320])
            await asyncio.sleep(0.02)
        await ws.send(json.dumps({"type": "hangup"}))
        async for message in ws:
            if isinstance(message, str) and json.loads(message)["type"] == "ended":
                return json.loads(message)
    raise AssertionError("no ended message")


def get(server: PhoneServer, path: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(server.address(path), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def test_links_planted_in_save_are_never_followed_and_runs_never_overwrite(tmp_path):
    """The attack: links in --save where call 1's files went; a second run after a first.

    Invariants: the victims are untouched; each run writes in its own new
    folder, 0700, files 0600; the first run's recording is unchanged by the second.
    """
    save = tmp_path / "save"
    save.mkdir()
    victim_dir = tmp_path / "victim-dir"
    victim_dir.mkdir()
    victim = tmp_path / "victim-file"
    victim.write_bytes(b"precious")
    (save / "1").symlink_to(victim_dir)  # the old layout: save/1/recording.wav
    (save / "recording.wav").symlink_to(victim)
    async with serve(echo, "127.0.0.1", 0) as bot:
        uri = f"ws://127.0.0.1:{bot.sockets[0].getsockname()[1]}/ws"
        options = PhoneOptions(uri, protocol="raw", sample_rate=RATE)
        runs = []
        for _ in range(2):
            async with PhoneServer(options, folder=save) as server:
                ended = await one_call(server)
                assert ended["recording"] == "/files/1/recording.wav"
                runs.append(server.folder)
                status, body = await asyncio.to_thread(get, server, ended["recording"])
                assert status == 200 and body[:4] == b"RIFF"
            if len(runs) == 1:
                first = (runs[0] / "1" / "recording.wav").read_bytes()
    assert list(victim_dir.iterdir()) == [] and victim.read_bytes() == b"precious"
    assert runs[0] != runs[1] and all(run.parent == save for run in runs)
    assert (runs[0] / "1" / "recording.wav").read_bytes() == first
    for run in runs:
        assert mode(run) == 0o700 and mode(run / "1") == 0o700
        for name in ("recording.wav", "timeline.png"):
            assert mode(run / "1" / name) == 0o600 and not (run / "1" / name).is_symlink()
    assert hashlib.sha256(first).hexdigest() != hashlib.sha256(b"").hexdigest()


async def test_only_the_files_this_run_wrote_are_served_and_only_as_written(tmp_path):
    """Files that appear in the run folder, or replace ours, are not served (404)."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0")
    async with serve(echo, "127.0.0.1", 0) as bot:
        uri = f"ws://127.0.0.1:{bot.sockets[0].getsockname()[1]}/ws"
        options = PhoneOptions(uri, protocol="raw", sample_rate=RATE)
        async with PhoneServer(options, folder=tmp_path / "save") as server:
            ended = await one_call(server)
            run = server.folder
            # Served: what it wrote.
            assert (await asyncio.to_thread(get, server, ended["timeline"]))[0] == 200
            # Not served: a file it did not write, in the place a call 2's would be.
            (run / "2").mkdir()
            (run / "2" / "recording.wav").write_bytes(b"RIFF planted")
            assert (await asyncio.to_thread(get, server, "/files/2/recording.wav"))[0] == 404
            # Not served: its own timeline swapped for a link to a secret...
            (run / "1" / "timeline.png").unlink()
            (run / "1" / "timeline.png").symlink_to(secret)
            status, body = await asyncio.to_thread(get, server, ended["timeline"])
            assert status == 404 and b"root" not in body
            # ... or its recording swapped for another regular file.
            replacement = run / "1" / "other.wav"
            replacement.write_bytes(b"RIFF another")
            os.replace(replacement, run / "1" / "recording.wav")
            status, body = await asyncio.to_thread(get, server, ended["recording"])
            assert status == 404 and b"another" not in body
            # Nor the launcher page (it carries the token), nor anything by path.
            server.launcher()
            for path in ("/files/open-phone.html", "/open-phone.html", "/files/1/../../secret"):
                assert (await asyncio.to_thread(get, server, path))[0] == 404


async def test_the_launcher_is_private_and_gone_after_the_run(tmp_path) -> None:
    async with PhoneServer(PhoneOptions("ws://127.0.0.1:9/ws"), folder=tmp_path) as server:
        launcher = server.launcher()
        assert mode(launcher) == 0o600 and server.token in launcher.read_text()
        started = time.monotonic()
    assert not launcher.exists()
    assert time.monotonic() - started < 5


def test_a_save_folder_that_cannot_be_used_is_a_usage_error_in_one_line(tmp_path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pipecat_wsclient", "phone", "ws://127.0.0.1:9/ws"),
            *("--no-browser", "--save", str(not_a_folder)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert (
        proc.stderr.startswith(f"error: --save {not_a_folder}: ") and proc.stderr.count("\n") == 1
    )
    assert proc.stdout == ""
