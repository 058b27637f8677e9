"""A Pipecat upgrade is safe: what we take from Pipecat's internals is checked.

``pipecat_wsclient.upstream`` lists every Pipecat method the package copies
or relies on, with a fingerprint of its code, and the private attributes it
reads. These tests fail when the installed Pipecat differs (each changed
method named, with what to do), check the attributes on real objects in a
real pipeline, check that our own names shadow nothing of Pipecat's by
accident, and run a whole call through the fallbacks a changed Pipecat gets.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import textwrap
import tomllib
from collections import deque
from pathlib import Path

import pytest
from loguru import logger
from packaging.requirements import Requirement
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.workers.runner import WorkerRunner

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport, upstream
from pipecat_wsclient.input import WebsocketClientInputTransport
from pipecat_wsclient.output import WebsocketClientOutputTransport
from pipecat_wsclient.sender import (
    CountingMediaSender,
    InterruptionCounter,
    LeanMediaSender,
    interruptible_audio_bytes,
)
from pipecat_wsclient.transport import WebsocketClientTransport as TransportClass
from support.servers import record_server

CHUNK = 1280  # 40 ms at 16 kHz mono, the default 4 x 10 ms
ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def fresh_verdicts():
    """Each test checks the parts anew, and leaves no verdict for the next."""
    upstream.reset_verdicts()
    yield
    upstream.reset_verdicts()


@pytest.fixture
def warnings():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    yield lines
    logger.remove(sink)


def tamper(monkeypatch, part: str, *, copied: bool = True) -> upstream.Method:
    """Record a wrong fingerprint for the part's first copied (or called) method."""
    original = upstream.PARTS[part]
    index = next(i for i, m in enumerate(original.methods) if m.copied == copied)
    method = dataclasses.replace(original.methods[index], fingerprint="0" * 12)
    methods = (*original.methods[:index], method, *original.methods[index + 1 :])
    monkeypatch.setitem(upstream.PARTS, part, dataclasses.replace(original, methods=methods))
    return method


# -- the guard: the installed Pipecat is the one we copied from ---------------


def test_installed_pipecat_code_is_what_we_copied_and_rely_on():
    changed = [c for part in upstream.PARTS.values() for c in upstream.changes(part)]
    assert not changed, (
        f"Pipecat {upstream.pipecat_version()} differs from the code pipecat-wsclient "
        f"was written against (Pipecat {upstream.PIPECAT_VERSION}):\n"
        + "\n".join(f"  {c}\n    we depend on it: {c.method.why}" for c in changed)
        + "\nFor each: read the upstream change (git diff of Pipecat between the two "
        "versions), adapt our copy (sender.py, output.py, input.py, protobuf_audio.py) "
        "if it needs it, then record the new fingerprint in src/pipecat_wsclient/"
        "upstream.py (and PIPECAT_VERSION). Until then, users of that Pipecat get the "
        "fallback of each part whose copied methods changed (a warning says so)."
    )


def test_fingerprints_were_taken_from_the_installed_pipecat():
    assert upstream.pipecat_version() == upstream.PIPECAT_VERSION, (
        f"the fingerprints in upstream.py are of Pipecat {upstream.PIPECAT_VERSION}, "
        f"Pipecat {upstream.pipecat_version()} is installed: if the test above passes, "
        "set PIPECAT_VERSION to it (the code we copy did not change)"
    )


def test_version_policy_pyproject_pin_and_fingerprints_agree():
    """pyproject admits the checked release and not the next major; CI installs that release."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [requirement] = [
        Requirement(d) for d in project["project"]["dependencies"] if d.startswith("pipecat-ai")
    ]
    assert upstream.PIPECAT_VERSION in requirement.specifier
    assert "2.0.0" not in requirement.specifier
    # The lower bound is the checked release's minor: nothing older is claimed.
    major, minor, *_ = upstream.PIPECAT_VERSION.split(".")
    assert f"{major}.{int(minor) - 1}.99" not in requirement.specifier
    pins = [
        line.split("==")[1].strip()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("pipecat-ai==")
    ]
    assert pins == [upstream.PIPECAT_VERSION]


def test_every_part_fits_the_installed_pipecat(warnings):
    assert all(upstream.fits(name) for name in upstream.PARTS)
    assert warnings == []


def test_every_method_listed_exists_and_names_are_unique():
    paths = [m.path for part in upstream.PARTS.values() for m in part.methods]
    assert len(paths) == len(set(paths))
    for path in paths:
        assert callable(upstream.resolve(path)) or isinstance(upstream.resolve(path), property)


# -- the fingerprint ------------------------------------------------------------

ORIGINAL = '''
@decorated
async def handler(self, frame: Frame) -> bool:
    """What it does."""
    # Skip empty frames.
    if not frame.audio:
        return False
    logger.debug(f"{self} writing {len(frame.audio)} bytes")
    return await self._write(frame)
'''


@pytest.mark.parametrize(
    "variant",
    [
        ORIGINAL.replace('"""What it does."""', '"""Something else entirely.\n\n    More."""'),
        ORIGINAL.replace('    """What it does."""\n', ""),
        ORIGINAL.replace("# Skip empty frames.", "# a different comment  # and another"),
        ORIGINAL.replace("return False", "return False  # a trailing comment"),
        ORIGINAL.replace("(self, frame: Frame)", "(\n    self,\n    frame: Frame,\n)"),
        ORIGINAL.replace(
            'f"{self} writing {len(frame.audio)} bytes"',
            "f'{self} writing {len(frame.audio)} bytes'",
        ),
        textwrap.indent(ORIGINAL, "        "),  # a method of a nested class
    ],
    ids=["docstring", "no docstring", "comment", "trailing comment", "layout", "quotes", "indent"],
)
def test_fingerprint_ignores_docstrings_comments_and_layout(variant):
    assert upstream.fingerprint_source(variant) == upstream.fingerprint_source(ORIGINAL)


@pytest.mark.parametrize(
    "variant",
    [
        ORIGINAL.replace("return False", "return True"),
        ORIGINAL.replace("if not frame.audio:", "if frame.audio is None:"),
        ORIGINAL.replace("self._write(frame)", "self._write_audio(frame)"),
        ORIGINAL.replace("async def", "def").replace("await ", ""),
        ORIGINAL.replace("@decorated\n", ""),
        ORIGINAL.replace(" -> bool", ""),
        ORIGINAL.replace("writing {len", "sending {len"),
    ],
    ids=["constant", "condition", "call", "sync", "decorator", "annotation", "f-string"],
)
def test_fingerprint_changes_with_the_code(variant):
    assert upstream.fingerprint_source(variant) != upstream.fingerprint_source(ORIGINAL)


def test_fingerprint_ignores_docstrings_of_nested_functions_and_classes():
    nested = "def f():\n    def g():\n        '''Doc.'''\n        return 1\n    return g\n"
    assert upstream.fingerprint_source(nested) == upstream.fingerprint_source(
        nested.replace("'''Doc.'''", "'''Other.'''")
    )
    only_doc = "def f():\n    '''Only a docstring.'''\n"
    assert upstream.fingerprint_source(only_doc) == upstream.fingerprint_source(
        "def f():\n    pass\n"
    )


def test_fingerprint_is_the_same_on_every_python():
    """A recorded value: the same on 3.11, 3.12 and 3.13 (``dev.py test-pythons`` runs this).

    ``ast.unparse`` would not do: from 3.12 on it quotes f-strings differently.
    """
    assert upstream.fingerprint_source(ORIGINAL) == "29502209e85c"


class _Docs:
    class Inner:
        def method(self, x):
            """Documented."""
            # Commented.
            return f"{x!r}"

        @property
        def value(self):
            """A property."""
            return 1


class _Bare:
    class Inner:
        def method(self, x):
            return f"{x!r}"

        @property
        def value(self):
            return 1


class _Changed:
    class Inner:
        def method(self, x):
            return f"{x!s}"


def test_fingerprint_of_real_methods_reads_their_source():
    assert upstream.fingerprint(_Docs.Inner.method) == upstream.fingerprint(_Bare.Inner.method)
    assert upstream.fingerprint(_Docs.Inner.method) != upstream.fingerprint(_Changed.Inner.method)
    # A property: its getter's code (decorator included).
    prop = inspect.getattr_static(_Docs.Inner, "value")
    assert upstream.fingerprint(prop) == upstream.fingerprint(
        inspect.getattr_static(_Bare.Inner, "value")
    )


# -- at run time: a changed Pipecat switches the part off, with one warning ----


@pytest.mark.parametrize("part", list(upstream.PARTS))
def test_a_changed_copied_method_switches_its_part_off_with_one_warning(
    monkeypatch, warnings, part
):
    method = tamper(monkeypatch, part)
    assert upstream.fits(part) is False
    assert upstream.fits(part) is False
    assert len(warnings) == 1, warnings
    [line] = warnings
    assert f"{method.path}: code changed (000000000000 -> " in line
    assert f"checked against Pipecat {upstream.PIPECAT_VERSION}" in line
    assert upstream.PARTS[part].fallback in line
    # The other parts are not affected.
    assert all(upstream.fits(name) for name in upstream.PARTS if name != part)
    assert len(warnings) == 1


def test_a_changed_called_method_is_for_ci_only(monkeypatch, warnings):
    """A method we only call: the call reaches Pipecat's new code, so the part stays on."""
    method = tamper(monkeypatch, "sender", copied=False)
    assert upstream.fits("sender") is True
    assert warnings == []
    [change] = upstream.changes(upstream.PARTS["sender"])
    assert change.method == method and change.problem == "code changed"


def test_a_missing_method_or_unreadable_source_switches_the_part_off(monkeypatch, warnings):
    original = upstream.PARTS["sender"]
    gone = dataclasses.replace(
        original.methods[-1], path="BaseOutputTransport.MediaSender._renamed_away"
    )
    monkeypatch.setitem(
        upstream.PARTS,
        "sender",
        dataclasses.replace(original, methods=(*original.methods[:-1], gone)),
    )
    assert upstream.fits("sender") is False
    assert "BaseOutputTransport.MediaSender._renamed_away: missing" in warnings[0]

    def no_source(obj):
        raise OSError("could not get source code")

    monkeypatch.setattr(inspect, "getsource", no_source)
    assert upstream.fits("input") is False
    assert "source not readable (could not get source code)" in warnings[1]


# -- the attributes we read, on Pipecat's own objects in a real pipeline -------


class PlainOutput(BaseOutputTransport):
    """Pipecat's own output: its set_transport_ready, its sender; writes wait for ``release``."""

    def __init__(self):
        super().__init__(TransportParams(audio_out_enabled=True))
        self.release = asyncio.Event()

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        await self.release.wait()
        return True


class PlainInput(BaseInputTransport):
    def __init__(self):
        super().__init__(TransportParams(audio_in_enabled=True))

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)


class PlainTransport(BaseTransport):
    def input(self):
        return PlainInput()

    def output(self):
        return PlainOutput()


async def run_plain_pipeline(check) -> None:
    """Run Pipecat's own input and output; call ``check(input, output, sender)`` mid-call.

    The output's sender holds a chunk being written, 4 chunks queued and half
    a chunk waiting to fill one.
    """
    plain_in, plain_out = PlainInput(), PlainOutput()
    worker = PipelineWorker(
        Pipeline([plain_in, plain_out]),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    try:
        await wait_for(lambda: None in getattr(plain_out, "_media_senders", {}), 5)
        sender = plain_out._media_senders[None]
        await worker.queue_frame(TTSAudioRawFrame(pcm(0.22), RATE, 1))  # 5.5 chunks
        await wait_for(lambda: sender._audio_queue.qsize() == 4, 5)
        await check(plain_in, plain_out, sender)
        plain_out.release.set()
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(run, 10)
    finally:
        if not run.done():
            await worker.cancel()
            await asyncio.wait_for(run, 10)


def owner_of(path: str, objects: dict[str, object]) -> tuple[object, str]:
    owner, _, name = path.rpartition(".")
    return objects[owner], name


async def test_private_attributes_we_read_exist_on_pipecats_own_objects():
    async def check(plain_in, plain_out, sender):
        objects = {
            "BaseOutputTransport.MediaSender": sender,
            "BaseOutputTransport": plain_out,
            "BaseInputTransport": plain_in,
            "FrameQueue": sender._audio_queue,
            "BaseObject": plain_out,
        }
        listed = [a for part in upstream.PARTS.values() for a in part.attributes]
        for path in (*listed, *upstream.OTHER_ATTRIBUTES):
            if path.startswith("pipecat."):
                upstream.resolve(path)  # a module constant
                continue
            obj, name = owner_of(path, objects)
            assert hasattr(obj, name), f"{path} is gone: see src/pipecat_wsclient/upstream.py"
        # The shapes interruptible_audio_bytes reads: a deque of frames, runs of
        # (bytearray, uninterruptible).
        assert isinstance(sender._audio_queue._queue, deque)
        assert all(isinstance(f, OutputAudioRawFrame) for f in sender._audio_queue._queue)
        assert [(type(a), flag) for a, flag in sender._audio_runs] == [(bytearray, False)]
        # What we count is what Pipecat's sender discards on an interruption:
        # the 4 queued chunks and the half chunk (not the one being written).
        counted = interruptible_audio_bytes(sender)
        assert counted == 4 * CHUNK + CHUNK // 2
        await sender.handle_interruptions(InterruptionFrame())
        assert sender._audio_queue.empty() and not sender._audio_runs
        assert interruptible_audio_bytes(sender) == 0

    await run_plain_pipeline(check)


# Private names of our subclasses that Pipecat's classes have too, on purpose:
# each is listed in upstream.py (a method we copy, or a hook we override).
DECLARED = {
    m.path.rpartition(".")[2] for part in upstream.PARTS.values() for m in part.methods if m.copied
} | {a.rpartition(".")[2] for part in upstream.PARTS.values() for a in part.attributes}


def names_we_define(cls: type) -> set[str]:
    """Methods, class attributes and ``self.x =`` assignments in the class's own source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and isinstance(node.ctx, ast.Store)
        ):
            names.add(node.attr)
    return names


async def test_our_private_names_shadow_nothing_of_pipecats_by_accident():
    """A Pipecat release that adds e.g. ``_gathered`` to its sender would be clobbered."""

    async def check(plain_in, plain_out, sender):
        pipecat_names = {
            LeanMediaSender: set(dir(sender)) | set(vars(sender)),
            InterruptionCounter: set(dir(sender)) | set(vars(sender)),
            WebsocketClientOutputTransport: set(dir(plain_out)) | set(vars(plain_out)),
            WebsocketClientInputTransport: set(dir(plain_in)) | set(vars(plain_in)),
            TransportClass: set(dir(PlainTransport())) | set(vars(PlainTransport())),
        }
        for cls, theirs in pipecat_names.items():
            shared = {n for n in names_we_define(cls) & theirs if n.startswith("_")}
            shared -= {n for n in shared if n.startswith("__")}
            assert shared <= DECLARED, (
                f"{cls.__name__} defines {sorted(shared - DECLARED)}, which Pipecat's base "
                "class has too: rename ours, or list it in upstream.py if we mean to override it"
            )

    await run_plain_pipeline(check)


# -- the fallbacks, for real: a whole call with every part switched off --------


async def test_a_call_through_every_fallback(monkeypatch, warnings):
    """What a Pipecat whose copied code changed gets: Pipecat's own paths, still correct.

    Audio out byte-exact and in order, an interruption that reaches the far
    end first and whose discarded audio is counted, audio in delivered, and
    EndFrame ending the call with a normal close.
    """
    tampered = {name: tamper(monkeypatch, name) for name in upstream.PARTS}
    first, second = pcm(2.0, seed=41), pcm(0.4, seed=42)  # whole chunks
    inbound = pcm(0.5, seed=43)
    serializer = ProtobufFrameSerializer()
    hello = [
        await serializer.serialize(OutputAudioRawFrame(inbound[i : i + 640], RATE, 1))
        for i in range(0, len(inbound), 640)
    ]
    async with record_server(send_on_connect=hello) as server:
        t = WebsocketClientTransport(server.uri, client_params())

        def audio_out() -> int:
            return sum(len(m) for m in server.messages if isinstance(m, bytes))

        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(first, RATE, 1))
            await wait_for(lambda: audio_out() >= len(first) // 4, 10)
            await p.send(InterruptionFrame())
            await asyncio.sleep(0.2)
            await p.send(TTSAudioRawFrame(second, RATE, 1))
            await wait_for(lambda: len(p.collector.audio()) == len(inbound), 5)
            sender = t.output()._media_senders[None]
            took = await p.end()
        await wait_for(lambda: server.close_codes, 5)
        frames: list[Frame | None] = [await serializer.deserialize(m) for m in server.messages]

    # Pipecat's own sender, counting; nothing of ours in its place.
    assert type(sender) is CountingMediaSender and t.output()._lean_senders == []
    # Out: a prefix of the first clip (whole chunks), the interruption, all of the second.
    kinds = [type(f).__name__ for f in frames if f is not None]
    interruption = kinds.index("InterruptionFrame")
    sent = [f.audio for f in frames if isinstance(f, InputAudioRawFrame)]
    before = b"".join(sent[:interruption])
    after = b"".join(sent[interruption:])
    assert kinds.count("InterruptionFrame") == 1
    assert 0 < len(before) < len(first) and len(before) % CHUNK == 0
    assert before == first[: len(before)]
    assert after == second
    # Nothing lost uncounted: what the interruption discarded (Pipecat's queue
    # and our write path) is the rest of the first clip.
    s = t.stats
    assert s.interrupted_audio_secs == pytest.approx((len(first) - len(before)) / (2 * RATE))
    assert s.audio_secs_sent == pytest.approx((len(before) + len(second)) / (2 * RATE))
    assert s.dropped_audio_secs == 0
    # In: through Pipecat's audio queue and its serializer, in order.
    assert p.collector.audio() == inbound
    # EndFrame ended the call: a normal close, no error.
    assert server.close_codes == [1000]
    assert p.errors == []
    assert took < 5
    # One warning per part, naming what changed.
    assert len(warnings) == len(upstream.PARTS), warnings
    for name, method in tampered.items():
        assert sum(method.path in line for line in warnings) == 1, name
