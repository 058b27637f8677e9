"""Issue 25, item 5: a scenario file you were sent cannot take your secrets to its host.

Found by the attack run: a scenario run without ``--uri`` sent ``${SECRET}``
from the environment (in the URI's query, in a header) and a WAV from
outside its folder (``play: ../../private/secret.wav``) to the host the
file names, and exited 0.

The promise: reading the environment and playing a file outside the
scenario's folder take the user's consent (``--allow-env NAME``,
``--allow-outside-files``), for ``test`` and ``load --scenario``. Without
it: one line naming the variable or the path and the option, exit 2, no
connection. With it, the call is made as before. Whenever the URI comes
from the file, the host is shown on stderr (redacted) before the call. A
program that names its own file (the library's default, Locust) trusts it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pipecat_wsclient.audio.wav import write_wav
from pipecat_wsclient.scenario.model import (
    Consent,
    ScenarioError,
    load_scenario,
    parse_scenario,
)
from support.commands import CLI
from support.servers import closing_server

SENT = Consent(env=frozenset(), outside_files=False)
"""The command line's default: nothing of this machine's."""


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int | None, str, str]:
    """Run the command line with extra environment variables; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


def write(folder: Path, text: str, name: str = "sent.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """``sent/`` (the scenario's folder, with a clip) beside ``private/secret.wav``."""
    for folder in ("sent/clips", "private"):
        (tmp_path / folder).mkdir(parents=True)
    write_wav(tmp_path / "sent/clips/ok.wav", b"\x00\x01" * 1600, 16000)
    write_wav(tmp_path / "private/secret.wav", b"\x00\x01" * 1600, 16000)
    return tmp_path


# -- the model: pure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "uri: ws://h/ws?key=${SECRET}\n",
        "headers: {X-Leak: 'Bearer ${SECRET}'}\n",
        "headers: {X-Leak: '${SECRET:-fallback}'}\n",  # set: the default does not apply
        "name: ${SECRET}\n",
    ],
)
def test_a_variable_not_allowed_is_refused_by_name(tmp_path: Path, where: str) -> None:
    path = write(tmp_path, where + "turns: [{say: hi}]\n")
    with pytest.raises(ScenarioError) as refused:
        load_scenario(path, env={"SECRET": "hunter2"}, consent=SENT)
    message = str(refused.value)
    assert "${SECRET}" in message and "--allow-env SECRET" in message
    assert "hunter2" not in message


def test_an_allowed_variable_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "headers: {X-Key: '${SECRET}'}\nturns: [{say: '${WHO}'}]\n")
    consent = Consent(env=frozenset({"SECRET", "WHO"}), outside_files=False)
    scenario = load_scenario(path, env={"SECRET": "s", "WHO": "me"}, consent=consent)
    assert dict(scenario.headers) == {"X-Key": "s"}
    assert scenario.turns[0].text == "me"


def test_only_the_variables_named_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, "headers: {A: '${A}', B: '${B}'}\nturns: [{say: hi}]\n")
    with pytest.raises(ScenarioError, match=r"\$\{B\}.*--allow-env B"):
        load_scenario(path, env={"A": "1", "B": "2"}, consent=Consent(env=frozenset({"A"})))


def test_a_default_needs_no_consent_when_the_variable_is_not_set(tmp_path: Path) -> None:
    text = "headers: {Authorization: 'Bearer ${BOT_TOKEN:-local}'}\nturns: [{say: hi}]\n"
    path = write(tmp_path, text)
    scenario = load_scenario(path, env={}, consent=SENT)
    assert dict(scenario.headers) == {"Authorization": "Bearer local"}
    with pytest.raises(ScenarioError, match=r"\$\{NOPE\} is not set"):
        parse_scenario({"turns": [{"say": "${NOPE}"}]}, env={}, consent=SENT)


@pytest.mark.parametrize(
    "play",
    [
        "../private/secret.wav",
        "clips/../../private/secret.wav",
        "{root}/private/secret.wav",  # absolute
        "link.wav",  # a link in the folder to a file outside it
    ],
)
def test_a_file_outside_the_folder_is_refused(layout: Path, play: str) -> None:
    (layout / "sent/link.wav").symlink_to(layout / "private/secret.wav")
    play = play.format(root=layout)
    path = write(layout / "sent", f"turns: [{{play: '{play}'}}]\n")
    with pytest.raises(ScenarioError) as refused:
        load_scenario(path, env={}, consent=SENT)
    message = str(refused.value)
    assert play in message and "outside the scenario's folder" in message
    assert "--allow-outside-files" in message
    allowed = load_scenario(path, env={}, consent=Consent(env=frozenset(), outside_files=True))
    assert allowed.turns[0].audio is not None


def test_a_file_inside_the_folder_needs_no_consent(layout: Path) -> None:
    path = write(layout / "sent", "turns: [{play: clips/ok.wav}, {play: ./clips/ok.wav}]\n")
    scenario = load_scenario(path, env={}, consent=SENT)
    assert [t.audio for t in scenario.turns] == [layout / "sent/clips/ok.wav"] * 2


def test_the_library_default_trusts_the_file(layout: Path) -> None:
    """A program names its own file (Locust's ``scenario =``): as before, no consent asked."""
    text = "headers: {K: '${SECRET}'}\nturns: [{play: ../private/secret.wav}]\n"
    path = write(layout / "sent", text)
    scenario = load_scenario(path, env={"SECRET": "s"})
    assert dict(scenario.headers) == {"K": "s"}


# -- the command line: no connection without consent ---------------------------------------------


async def test_test_refuses_a_secret_and_makes_no_call(layout: Path) -> None:
    async with closing_server(1000, "bye", after=0.5) as server:
        path = write(layout / "sent", f"uri: {server.uri}?key=${{SECRET}}\nturns: [{{say: hi}}]\n")
        code, out, err = await cli("test", str(path), "--no-transcripts", env={"SECRET": "hunter2"})
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "${SECRET}" in lines[0] and "--allow-env SECRET" in lines[0], err
    assert "hunter2" not in err + out
    assert server.connections == 0


async def test_test_refuses_a_file_outside_and_makes_no_call(layout: Path) -> None:
    async with closing_server(1000, "bye", after=0.5) as server:
        text = f"uri: {server.uri}\nturns: [{{play: ../private/secret.wav}}]\n"
        path = write(layout / "sent", text)
        code, _, err = await cli("test", str(path), "--no-transcripts")
    assert code == 2, err
    assert "../private/secret.wav" in err and "--allow-outside-files" in err
    assert len(err.strip().splitlines()) == 1
    assert server.connections == 0


async def test_load_scenario_refuses_a_secret_and_makes_no_call(layout: Path) -> None:
    async with closing_server(1000, "bye", after=0.5) as server:
        path = write(layout / "sent", "headers: {X-Leak: '${SECRET}'}\nturns: [{say: hi}]\n")
        code, _, err = await cli(
            "load", server.uri, "--scenario", str(path), "--calls", "1", env={"SECRET": "hunter2"}
        )
    assert code == 2, err
    assert "--allow-env SECRET" in err and "hunter2" not in err
    assert server.connections == 0


async def test_with_consent_the_call_is_made_and_the_host_shown_first(layout: Path) -> None:
    async with closing_server(1000, "bye", after=0.5) as server:
        path = write(
            layout / "sent",
            f"uri: {server.uri}?key=${{SECRET}}\nheaders: {{X-Key: '${{SECRET}}'}}\n"
            "turns: [{play: ../private/secret.wav}]\n",
        )
        code, _, err = await cli(
            "test", str(path), "--no-transcripts", "--allow-env", "SECRET,OTHER",
            "--allow-outside-files", "--out-dir", str(layout / "out"),
            env={"SECRET": "hunter2"},
        )  # fmt: skip
    assert server.connections == 1, err
    assert server.request_headers[0]["x-key"] == "hunter2"  # what the user allowed
    first = err.strip().splitlines()[0]
    assert first == f"calling {server.uri}?key=*** (from scenario file {path})", err
    assert "hunter2" not in err
    assert code != 2


async def test_with_uri_given_no_host_line(layout: Path) -> None:
    async with closing_server(1000, "bye", after=0.5) as server:
        path = write(layout / "sent", "uri: ws://elsewhere.invalid/ws\nturns: [{say: hi}]\n")
        _, _, err = await cli("test", str(path), "--no-transcripts", "--uri", server.uri)
    assert server.connections == 1
    assert "calling" not in err


@pytest.mark.parametrize("value", ["1SECRET", "SE-CRET", "SE CRET"])
async def test_allow_env_takes_variable_names(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "uri: ws://127.0.0.1:9/ws\nturns: [{say: hi}]\n")
    code, _, err = await cli("test", str(path), "--allow-env", value)
    assert code == 2 and "--allow-env" in err and "not a variable name" in err
