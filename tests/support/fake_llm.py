"""A rule-driven OpenAI-compatible LLM server: the persona and the judge without a model.

Pipecat's own services talk to it unchanged: the ``ollama`` service
(``OLLamaLLMService``, an OpenAI client) built by
``pipecat.evals.services.llm_service_from_config({"service": "ollama",
"endpoint": url, "model": "fake"}, where=...)`` plays the persona, and
``EvalJudge.from_config`` with the same block judges. The server answers what
those classes send (read from Pipecat 1.14 and checked on real requests):

- ``POST /v1/chat/completions``, streamed (SSE ``chat.completion.chunk``
  lines, text deltas then ``tool_calls`` deltas, a usage chunk when
  ``stream_options.include_usage``, ``data: [DONE]``) or not (one
  ``chat.completion``, the answer as ``message.content`` and
  ``message.tool_calls``). The judge's calls are non-streamed with
  ``response_format: {"type": "json_schema", ...}`` and no ``logprobs``: the
  probabilities are numbers written in the JSON answer;
- ``GET /v1/models``, listing the one model ``fake``.

Who is asking is read from the system message:

- the persona (``EvalPersona``'s instruction, "You are playing a person on a
  phone call..."): the next :attr:`LLMRules.persona_lines` line (see
  :class:`LLMRules`), spoken text and, with ``end_call``, a call of the
  ``end_call`` tool in the same response, as a model that talks and hangs up
  does;
- the classifier (``LLMClassifier``'s "You are a classifier..."): one JSON
  answer per question of the ``response_format`` schema: a goal's yes/no
  (``{"probability": 0.95 | 0.05}``), a turn's ``meets``/``fails`` and a
  reply's ``yes``/``no`` choice (``{"choice", "probabilities"}``, the chosen
  option at 0.95), decided by :attr:`LLMRules.judge_rules`;
- the explainer (``EvalJudge``'s "You explain the verdicts..."): the reason
  JSON its schema asks for, per goal and per turn for a run, naming what the
  rule's pattern found or did not find: ``the bot never said /nine/``,
  ``bot turn 2 said /nine/``, ``the reply never said /nine/``;
- anything else: ``ok``.

Every request body is kept in :attr:`FakeLLM.requests`. :attr:`FakeLLM.fail_next`
answers the next N requests with HTTP 500 (``retry-after-ms: 10``, so the
OpenAI client's own two retries come at once: a call fails only after three
500s, one 500 is a transient error the client hides).

In-process::

    async with FakeLLM(LLMRules(persona_lines=[{"say": "Hi"}])) as llm:
        service = llm_service_from_config(
            {"service": "ollama", "endpoint": llm.url, "model": "fake"}, where="simulator"
        )

As a script: ``python tests/support/fake_llm.py --rules FILE.json [--port 0]
[--record FILE.jsonl]`` prints ``READY http://127.0.0.1:PORT/v1`` and serves
until killed; ``--record`` appends each request body as a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

MODEL = "fake"
PERSONA_MARK = "You are playing a person on a phone call"
CLASSIFIER_MARK = "You are a classifier."
EXPLAINER_MARK = "You explain the verdicts a judge gave"
SURE = 0.95
"""The probability the fake judge gives the outcome it chose."""
UNSURE = 0.05
"""The probability of the other outcome (split evenly among the others of a choice)."""

DEFAULT_PERSONA_LINE: dict[str, Any] = {
    "say": "Okay, goodbye.",
    "end_call": {"success": False, "reason": "script exhausted"},
}
"""What the persona says once its lines are used up."""

_NOTES = (" A `tool` entry is", " `conversation` is context only.", " The bot's text may be")
"""Where a judge question's criterion ends: the notes EvalJudge puts after it."""


@dataclass
class LLMRules:
    """How the fake LLM answers; JSON both ways (:meth:`to_json`, :meth:`from_json`).

    Attributes:
        persona_lines: The persona's lines, each ``{"say": text}`` with an
            optional ``"end_call": {"success": bool, "reason": str}`` and an
            optional ``"when": regex``. A persona request gets the first line not
            yet said in its conversation (its assistant messages) that is
            eligible, so concurrent conversations each get the whole script:
            a line without ``when`` always is, one with ``when`` only if its
            regex is found (case-insensitively) in the latest user message,
            the bot's words. Plain lines are thus said in order, one per request.
        persona_default: The line for a persona request when no unused line is
            eligible (by default a goodbye hanging up with success false,
            reason "script exhausted"); it is never used up.
        judge_rules: Substring of a criterion or goal (case-insensitive) ->
            regex. The verdict is yes when the regex is found
            (case-insensitively) in the text judged: for a goal, any of the
            bot's lines; for a turn or a reply, the bot's reply; for a function
            call, ``name(json arguments)``. The first key found in the
            criterion decides; a criterion no key is in is a yes.
        fail_next: Answer the next N requests with HTTP 500.
        delay_s: Seconds to wait before answering each request.
    """

    persona_lines: list[dict[str, Any]] = field(default_factory=list)
    persona_default: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PERSONA_LINE))
    judge_rules: dict[str, str] = field(default_factory=dict)
    fail_next: int = 0
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        for line in [*self.persona_lines, self.persona_default]:
            _check_line(line)
        for pattern in self.judge_rules.values():
            re.compile(pattern)

    def to_dict(self) -> dict[str, Any]:
        """The rules as plain JSON data."""
        return asdict(self)

    def to_json(self) -> str:
        """The rules as a JSON document."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMRules:
        """Rules from JSON data; unknown keys are an error."""
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> LLMRules:
        """Rules from a JSON document."""
        return cls.from_dict(json.loads(text))


def _check_line(line: dict[str, Any]) -> None:
    """Raise ValueError if a persona line is not ``{say, end_call?, when?}``."""
    if not isinstance(line.get("say", ""), str) or set(line) - {"say", "end_call", "when"}:
        raise ValueError(f"a persona line is {{say, end_call?, when?}}: {line!r}")
    end_call = line.get("end_call")
    if end_call is not None and (
        not isinstance(end_call.get("success"), bool) or not isinstance(end_call.get("reason"), str)
    ):
        raise ValueError(f"end_call is {{success: bool, reason: str}}: {line!r}")
    if line.get("when") is not None:
        re.compile(line["when"])


def text_of(content: Any) -> str:
    """A message's text, whether its content is a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def request_kind(body: dict[str, Any]) -> str:
    """Who sent a request: ``persona``, ``classifier``, ``explainer`` or ``other``."""
    for message in body.get("messages", []):
        if message.get("role") in ("system", "developer"):
            text = text_of(message.get("content"))
            if text.startswith(PERSONA_MARK):
                return "persona"
            if text.startswith(CLASSIFIER_MARK):
                return "classifier"
            if text.startswith(EXPLAINER_MARK):
                return "explainer"
    return "other"


def criterion_of(instructions: str) -> str:
    """The criterion or goal in a judge question's instructions (all of them if unmarked)."""
    found = re.search(r"(?:Criterion|Goal): (.*)", instructions, re.DOTALL)
    if found is None:
        return instructions
    text = found.group(1)
    ends = [i for note in _NOTES if (i := text.find(note)) != -1]
    return text[: min(ends)].strip() if ends else text.strip()


class FakeLLM:
    """The server, on 127.0.0.1: ``async with FakeLLM(rules) as llm: llm.url``.

    Attributes:
        rules: The rules it answers by.
        requests: Every request body received, parsed, in order.
        fail_next: How many of the next requests get HTTP 500.
        used_lines: The indexes of the persona lines said so far, in order.
    """

    def __init__(
        self,
        rules: LLMRules | None = None,
        *,
        port: int = 0,
        record: Path | None = None,
    ):
        """Prepare the server.

        Args:
            rules: How to answer; ``None`` for the defaults.
            port: The port to bind; 0 picks a free one.
            record: A file to append each request body to as a JSON line.
        """
        self.rules = rules or LLMRules()
        self.requests: list[dict[str, Any]] = []
        self.fail_next = self.rules.fail_next
        self.used_lines: list[int] = []
        self._port = port
        self._record = record
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT/v1``."""
        if self._runner is None:
            raise RuntimeError("the fake LLM is not started")
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"

    def requests_of(self, kind: str) -> list[dict[str, Any]]:
        """The requests from one sender (see :func:`request_kind`)."""
        return [r for r in self.requests if request_kind(r) == kind]

    async def start(self) -> None:
        """Listen on 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, shutdown_timeout=1.0)
        await site.start()

    async def close(self) -> None:
        """Stop listening and close the connections."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeLLM:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _models(self, _request: web.Request) -> web.Response:
        model = {"id": MODEL, "object": "model", "created": 0, "owned_by": "fake"}
        return web.json_response({"object": "list", "data": [model]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "not JSON"}}, status=400)
        self.requests.append(body)
        if self._record is not None:
            with self._record.open("a") as out:
                out.write(json.dumps(body) + "\n")
        if self.rules.delay_s:
            await asyncio.sleep(self.rules.delay_s)
        if self.fail_next > 0:
            self.fail_next -= 1
            error = {"message": "fake LLM: injected failure", "type": "server_error"}
            return web.json_response({"error": error}, status=500, headers={"retry-after-ms": "10"})
        content, calls = self._answer(body)
        if body.get("stream"):
            return await self._stream(request, body, content, calls)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                for i, n, a in calls
            ]
        return web.json_response(
            {
                **self._head("chat.completion"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if calls else "stop",
                    }
                ],
                "usage": _usage(content),
            }
        )

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": kind, "created": int(time.time()), "model": MODEL}

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        content: str,
        calls: list[tuple[str, str, str]],
    ) -> web.StreamResponse:
        """Send the answer as SSE chunks: its words, then each tool call in pieces."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        async def send(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any):
            chunk = {**self._head("chat.completion.chunk"), **extra}
            if delta is not None:
                chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        for word in re.findall(r"\s*\S+\s*", content):
            await send({"content": word})
        for index, (call_id, name, arguments) in enumerate(calls):
            start = {"name": name, "arguments": ""}
            await send({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                        "function": start}]})  # fmt: skip
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                await send({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        await send({}, "tool_calls" if calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            await send(None, choices=[], usage=_usage(content))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _answer(self, body: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
        """The answer's text and tool calls ``(id, name, json arguments)``."""
        kind = request_kind(body)
        if kind == "persona":
            return self._persona(body)
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        asked = text_of(body["messages"][-1].get("content")) if body.get("messages") else ""
        if kind == "classifier" and schema:
            return json.dumps(self._classify(asked, schema)), []
        if kind == "explainer":
            return json.dumps(self._explain(body["messages"], asked, schema or {})), []
        return "ok", []

    def _persona(self, body: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
        messages = body.get("messages", [])
        users = [m for m in messages if m.get("role") == "user"]
        heard = text_of(users[-1].get("content")) if users else ""
        # Used in this conversation: said in an earlier assistant turn (so that
        # concurrent callers each get the whole script).
        said = {text_of(m.get("content")).strip() for m in messages if m.get("role") == "assistant"}
        line = self.rules.persona_default
        for index, candidate in enumerate(self.rules.persona_lines):
            if candidate.get("say", "").strip() in said:
                continue
            when = candidate.get("when")
            if when is None or re.search(when, heard, re.IGNORECASE):
                self.used_lines.append(index)
                line = candidate
                break
        calls = []
        if line.get("end_call") is not None:
            arguments = json.dumps(line["end_call"])
            calls.append((f"call_{next(self._ids)}", "end_call", arguments))
        return line.get("say", ""), calls

    def _rule(self, criterion: str) -> str | None:
        """The pattern of the first judge rule whose key is in ``criterion``."""
        for key, pattern in self.rules.judge_rules.items():
            if key.lower() in criterion.lower():
                return pattern
        return None

    def _verdict(self, criterion: str, text: str) -> bool:
        pattern = self._rule(criterion)
        return pattern is None or re.search(pattern, text, re.IGNORECASE) is not None

    def _reason(self, criterion: str, text: str, who: str) -> str:
        pattern = self._rule(criterion)
        if pattern is None:
            return "no rule covers this criterion, so the fake judge says yes"
        if re.search(pattern, text, re.IGNORECASE):
            return f"{who} said /{pattern}/"
        return f"{who} never said /{pattern}/"

    def _classify(self, asked: str, schema: dict[str, Any]) -> dict[str, Any]:
        """One answer per question in the schema, each judged by the rules."""
        state = _state(asked)
        if "latest_bot_reply" in state:
            text = str(state["latest_bot_reply"])
        elif "call" in state:
            call = state["call"]
            text = f"{call.get('name')}({json.dumps(call.get('arguments') or {})})"
        else:
            text = " ".join(
                str(e.get("text", ""))
                for e in state.get("conversation", [])
                if e.get("speaker") == "bot"
            )
        answers: dict[str, Any] = {}
        for name, shape in schema.get("properties", {}).items():
            found = re.search(
                rf'Question "{re.escape(name)}": (.*?)\n'
                r"(?:Yes means:|No means:|Options:|Answer shape:|Scale, lowest first:)",
                asked,
                re.DOTALL,
            )
            yes = self._verdict(criterion_of(found.group(1) if found else ""), text)
            if "probability" in shape.get("properties", {}):
                answers[name] = {"probability": SURE if yes else UNSURE}
                continue
            options = shape["properties"]["choice"].get("enum", [])
            choice = _option(options, yes)
            rest = round(UNSURE / max(1, len(options) - 1), 6)
            answers[name] = {
                "choice": choice,
                "probabilities": {o: SURE if o == choice else rest for o in options},
            }
        return answers

    def _explain(
        self, messages: list[dict[str, Any]], asked: str, schema: dict[str, Any]
    ) -> dict[str, Any]:
        """The reasons the explainer's schema asks for."""
        if asked.startswith("Transcript:"):
            return self._explain_run(asked, schema)
        criterion = _between(asked, "Criterion: ", "\n\nAnswer with") or ""
        call = re.match(r"The bot called the function `(.*?)` with arguments `(.*?)`\.", asked)
        if call:
            return {"reason": self._reason(criterion, f"{call[1]}({call[2]})", "the call")}
        reply: list[str] = []
        for message in messages[:-1]:
            if message.get("role") == "assistant":
                reply.append(text_of(message.get("content")))
            elif message.get("role") == "user":
                reply = []
        return {"reason": self._reason(criterion, " ".join(reply), "the reply")}

    def _explain_run(self, asked: str, schema: dict[str, Any]) -> dict[str, Any]:
        transcript = _between(asked, "Transcript:\n", "\n\nA line marked") or ""
        turns = {int(m[1]): m[2] for m in re.finditer(r"^Bot turn (\d+): (.*)$", transcript, re.M)}
        listed = _between(asked, "Criteria every bot reply was judged on:\n", "\n\nGoal ") or ""
        criteria = dict(re.findall(r"^- (.+?): (.*)$", listed, re.MULTILINE))
        success = _between(asked, "Goal the conversation as a whole was judged on: ", "\n\n")
        properties = schema.get("properties", {})
        answer: dict[str, Any] = {}
        if "goal" in properties:
            answer["goal"] = self._reason(success or "", " ".join(turns.values()), "the bot")
        wanted = properties.get("turns", {}).get("properties", {})
        answer["turns"] = {
            name: {
                number: self._reason(
                    criteria.get(name, name), turns.get(int(number), ""), f"bot turn {number}"
                )
                for number in by_turn.get("properties", {})
            }
            for name, by_turn in wanted.items()
        }
        if not wanted:
            del answer["turns"]
        return answer


def _usage(content: str) -> dict[str, int]:
    words = len(content.split())
    return {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words}


def _state(asked: str) -> dict[str, Any]:
    """The classifier's input: the JSON object after ``Input:``, or ``{}``."""
    start = asked.find("Input:\n")
    if start == -1:
        return {}
    with contextlib.suppress(json.JSONDecodeError):
        value, _ = json.JSONDecoder().raw_decode(asked[start + len("Input:\n") :])
        if isinstance(value, dict):
            return value
    return {}


def _between(text: str, start: str, end: str) -> str | None:
    """The text between two markers, or ``None`` without the first one."""
    i = text.find(start)
    if i == -1:
        return None
    i += len(start)
    j = text.find(end, i)
    return text[i:] if j == -1 else text[i:j]


def _option(options: list[str], yes: bool) -> str:
    """The option that means yes (``yes``, ``meets``) or no (``no``, ``fails``)."""
    for option in ("yes", "meets") if yes else ("no", "fails"):
        if option in options:
            return option
    return options[0 if yes or len(options) < 2 else 1]


async def main(argv: list[str]) -> None:
    """Serve until killed, after printing ``READY <url>`` on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, required=True, help="LLMRules as JSON")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", type=Path, help="append each request as a JSON line")
    args = parser.parse_args(argv)
    rules = LLMRules.from_json(args.rules.read_text())
    async with FakeLLM(rules, port=args.port, record=args.record) as llm:
        print(f"READY {llm.url}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1:]))
