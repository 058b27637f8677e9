"""PersonaMind (scenario.persona_llm): Pipecat's EvalPersona on its real Ollama service.

The LLM is the rule-driven fake of support/fake_llm.py, reached over HTTP by
Pipecat's own ``OLLamaLLMService``, so the requests, the streamed text and the
streamed ``end_call`` tool call all go through Pipecat's code unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any, cast

import pytest

from pipecat_wsclient.scenario.persona_llm import (
    CONNECTED_MESSAGE,
    SILENCE_MESSAGE,
    PersonaError,
    PersonaMind,
    PersonaReply,
)
from support.fake_llm import PERSONA_MARK, FakeLLM, LLMRules, request_kind, text_of

pytestmark = pytest.mark.timeout(30)

CALLER = "A polite caller in a hurry."
GOAL = "Find out when the shop opens, then hang up."


def simulator(llm: FakeLLM, **extra: Any) -> dict[str, Any]:
    return {"service": "ollama", "endpoint": llm.url, "model": "fake", **extra}


def last_user_text(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    return text_of(users[-1]["content"])


async def test_lines_come_in_order_and_end_call_comes_with_its_words():
    rules = LLMRules(
        persona_lines=[
            {"say": "Hi, when do you open?"},
            {"say": "And on Sundays?"},
            {"say": "Great, bye!", "end_call": {"success": True, "reason": "got the hours"}},
        ]
    )
    async with FakeLLM(rules) as llm, PersonaMind(CALLER, GOAL, simulator(llm)) as mind:
        first = await mind.reply(None, timeout=5)
        second = await mind.reply("Corner Shop, we open at nine.", timeout=5)
        third = await mind.reply("Sundays at ten.", timeout=5)

        assert [first.text, second.text, third.text] == [
            "Hi, when do you open?",
            "And on Sundays?",
            "Great, bye!",
        ]
        assert first.end_call is None and second.end_call is None
        assert third.end_call == {"success": True, "reason": "got the hours"}
        assert mind.end_call == {"success": True, "reason": "got the hours"}
        assert mind.hung_up
        assert first.started_at <= first.ended_at <= second.started_at <= second.ended_at

        # What Pipecat sent: the persona's instruction as the system message, the
        # end_call tool, streaming, and the bot's words as the user's.
        bodies = llm.requests
        assert [request_kind(b) for b in bodies] == ["persona"] * 3
        assert all(b["stream"] is True for b in bodies)
        system = bodies[0]["messages"][0]
        assert system["role"] == "system" and system["content"].startswith(PERSONA_MARK)
        assert CALLER in system["content"] and GOAL in system["content"]
        assert [t["function"]["name"] for t in bodies[0]["tools"]] == ["end_call"]
        assert [last_user_text(b) for b in bodies] == [
            CONNECTED_MESSAGE,
            "Corner Shop, we open at nine.",
            "Sundays at ten.",
        ]
        # The assistant aggregator kept the persona's own lines in its context.
        assistant = [m for m in bodies[2]["messages"] if m["role"] == "assistant"]
        assert [m["content"] for m in assistant] == ["Hi, when do you open?", "And on Sundays?"]
        last = cast("dict[str, Any]", mind.persona.context.get_messages()[-1])
        assert last["role"] == "tool"
        assert json.loads(last["content"]) == {"status": "call ended"}

        with pytest.raises(PersonaError, match=r"^the persona has hung up$"):
            await mind.reply("Anything else?", timeout=5)
        assert len(llm.requests) == 3


async def test_when_picks_the_first_unused_line_the_bot_words_match():
    rules = LLMRules(
        persona_lines=[
            {"say": "Perfect, thanks.", "when": r"\bhours\b", "end_call": {"success": True,
             "reason": "heard the hours"}},
            {"say": "Hello, I'd like your opening hours."},
            {"say": "Sorry, could you say that again?"},
        ]
    )  # fmt: skip
    async with FakeLLM(rules) as llm, PersonaMind(CALLER, GOAL, simulator(llm)) as mind:
        one = await mind.reply("Welcome to the Corner Shop.", timeout=5)
        two = await mind.reply("What was that?", timeout=5)
        three = await mind.reply("Our HOURS are nine to five.", timeout=5)

    assert [one.text, two.text, three.text] == [
        "Hello, I'd like your opening hours.",
        "Sorry, could you say that again?",
        "Perfect, thanks.",
    ]
    assert three.end_call == {"success": True, "reason": "heard the hours"}
    assert llm.used_lines == [1, 2, 0]


class HallucinatingLLM(FakeLLM):
    """Its first persona answer also calls ``look_up``, a tool the persona does not have."""

    def _persona(self, body: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
        if not self.requests_of("persona")[:-1]:
            return "Let me look.", [("call_x", "look_up", "{}")]
        return super()._persona(body)


async def test_a_call_to_an_unknown_tool_is_answered_within_the_same_turn():
    # Pipecat answers the call with "not available" and runs the LLM again: the
    # turn is complete only after that second response.
    rules = LLMRules(persona_lines=[{"say": "Found it, bye.", "end_call": {"success": True,
                                     "reason": "done"}}])  # fmt: skip
    async with HallucinatingLLM(rules) as llm, PersonaMind(CALLER, GOAL, simulator(llm)) as mind:
        reply = await mind.reply(None, timeout=5)
    assert reply.text == "Let me look. Found it, bye."
    assert reply.end_call == {"success": True, "reason": "done"}
    assert len(llm.requests) == 2
    assert llm.requests[1]["messages"][-1]["role"] == "tool"


async def test_speaking_first_again_and_the_exhausted_script():
    async with FakeLLM(LLMRules(persona_lines=[{"say": "Hello?"}])) as llm:
        async with PersonaMind(CALLER, GOAL, simulator(llm)) as mind:
            first = await mind.reply(None, timeout=5)
            second = await mind.reply("   ", timeout=5)  # blank: the bot still said nothing

    assert first == PersonaReply("Hello?", None, first.started_at, first.ended_at)
    assert second.text == "Okay, goodbye."
    assert second.end_call == {"success": False, "reason": "script exhausted"}
    assert [last_user_text(b) for b in llm.requests] == [CONNECTED_MESSAGE, SILENCE_MESSAGE]


async def test_a_server_error_is_a_persona_error_naming_the_simulator():
    # The OpenAI client retries a 500 twice: three of them fail one request.
    rules = LLMRules(persona_lines=[{"say": "Hi there."}], fail_next=3)
    async with FakeLLM(rules) as llm:
        config = simulator(llm, api_key="sk-test-not-a-real-key-1234")
        async with PersonaMind(CALLER, GOAL, config) as mind:
            with pytest.raises(PersonaError) as failed:
                await mind.reply(None, timeout=5)
            message = str(failed.value)
            assert message == (
                f"persona LLM (ollama model 'fake' at {llm.url}) failed: "
                "Error during completion: Error code: 500 - fake LLM: injected failure"
            )
            assert "sk-test" not in message and "\n" not in message
            assert len(llm.requests) == 3

            # The mind is still usable: the next reply asks again.
            again = await mind.reply("Hello?", timeout=5)
            assert again.text == "Hi there."


async def test_one_500_is_hidden_by_the_clients_retry():
    rules = LLMRules(persona_lines=[{"say": "Hi there."}], fail_next=1)
    async with FakeLLM(rules) as llm, PersonaMind(CALLER, GOAL, simulator(llm)) as mind:
        reply = await mind.reply(None, timeout=5)
    assert reply.text == "Hi there."
    assert len(llm.requests) == 2


async def test_a_slow_llm_times_out_and_close_is_bounded():
    rules = LLMRules(persona_lines=[{"say": "Hi."}], delay_s=30.0)
    async with FakeLLM(rules) as llm:
        mind = PersonaMind(CALLER, GOAL, simulator(llm))
        await mind.start()
        with pytest.raises(PersonaError) as failed:
            await mind.reply(None, timeout=0.3)
        assert str(failed.value) == (
            f"persona LLM (ollama model 'fake' at {llm.url}): no complete answer within 0.3 s"
        )
        with pytest.raises(PersonaError, match=re.escape("no complete answer within 0.3 s")):
            await mind.reply("Hello?", timeout=5)  # a response may still arrive: broken

        started = time.monotonic()
        await mind.close()  # the LLM is still streaming (waiting) its answer
        await mind.close()
        assert time.monotonic() - started < 3.0


async def test_close_while_replying_ends_the_reply():
    rules = LLMRules(persona_lines=[{"say": "Hi."}], delay_s=30.0)
    async with FakeLLM(rules) as llm:
        mind = PersonaMind(CALLER, GOAL, simulator(llm))
        await mind.start()
        reply = asyncio.ensure_future(mind.reply(None, timeout=20))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await mind.close()
        with pytest.raises(PersonaError, match="closed while replying"):
            await reply
        assert time.monotonic() - started < 3.0
        with pytest.raises(PersonaError, match=r"closed$"):
            await mind.reply("Hello?")


async def test_close_without_start_and_what_errors_name():
    mind = PersonaMind(
        CALLER,
        GOAL,
        {"service": "ollama", "endpoint": "http://user:pw@127.0.0.1:9/v1?token=t", "model": "m"},
    )
    assert mind.where == "ollama model 'm' at http://127.0.0.1:9/v1"
    await mind.close()
    await mind.close()
    with pytest.raises(PersonaError, match="closed"):
        await mind.reply(None)
    assert PersonaMind(CALLER, GOAL, None).where.startswith("ollama model ")
    with pytest.raises(ValueError, match="Unknown simulator service"):
        PersonaMind(CALLER, GOAL, {"service": "nonesuch"})
