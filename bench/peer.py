"""Against a peer: Parley's whole prompt assembly (summary + recall + window, through the
providers and PromptBuilder the core uses) versus LangChain's `trim_messages` with a tiktoken
counter (the counter from LangChain's own how-to), over the same history and token budget.
LangChain gets the history already loaded as message objects (loading is not timed); Parley
reads it from its SQLite store inside the timing. Needs the `bench` extra (langchain-core)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.fixtures import KEY, questions
from bot.core import Parley
from bot.messages import Author, Inbound
from bot.prompt import Newest, Section
from memory.store import AFTER_ALL
from memory.tokens import render


async def assemble(parley: Parley, text: str) -> int:
    """The prompt the core would send for `text` (not stored); returns its token count."""
    conversation = await parley.store.conversation(KEY)
    system = parley.settings.system_prompt
    system_tokens = parley.counter.count(system)
    rendered = render("user", "Alice", text)
    newest = Newest(AFTER_ALL, rendered, parley.counter.count(rendered))
    budget = parley.prompts.message_budget(system_tokens)
    message = Inbound(KEY, Author("alice", "Alice"), text)
    sections: list[Section] = []
    for provider in parley.providers:
        sections += await provider.sections(conversation, message, budget)
    prompt = await parley.prompts.build(
        conversation, (system, system_tokens), newest, tuple(sections)
    )
    return prompt.tokens


async def ours_ms(parley: Parley, repeats: int) -> float:
    times = []
    for text in questions(repeats, seed=5):
        started = time.perf_counter()
        await assemble(parley, text)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def langchain_ms(parley: Parley, rows: Sequence[tuple[str, str, str]], repeats: int) -> float:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, trim_messages

    encoding = parley.counter.encoding

    def tiktoken_counter(messages: Sequence[Any]) -> int:
        # LangChain's how-to counter: 3 tokens per message, 3 to prime the reply.
        tokens = 3
        for message in messages:
            tokens += 3 + len(encoding.encode(message.type)) + len(encoding.encode(message.content))
        return tokens

    loaded: list[Any] = [SystemMessage(parley.settings.system_prompt)]
    loaded += [
        AIMessage(content) if role == "assistant" else HumanMessage(render(role, name, content))
        for role, name, content in rows
    ]
    counter: Callable[[Sequence[Any]], int] = tiktoken_counter
    times = []
    for text in questions(repeats, seed=5):
        started = time.perf_counter()
        trim_messages(
            [*loaded, HumanMessage(render("user", "Alice", text))],
            max_tokens=parley.prompts.window - parley.prompts.reply_reserve,
            token_counter=counter,
            strategy="last",
            include_system=True,
            start_on="human",
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def history_rows(parley: Parley) -> list[tuple[str, str, str]]:
    conversation = await parley.store.conversation(KEY)
    return [
        (m.role, m.author_name, m.content) for m in await parley.store.messages(conversation.id)
    ]
