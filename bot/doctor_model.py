"""`parley doctor` on what the model server can do: the window Parley will budget for (and
where that came from), how tokens are counted, whether the model calls tools (when web search
is on in tool mode), whether embeddings work (when semantic recall is on)."""

from __future__ import annotations

from openai.types.chat import ChatCompletionFunctionToolParam

from bot.chat import ChatClient, ChatError
from bot.checks import Check
from bot.model_tokenizer import open_tokenizer
from bot.settings import Settings
from bot.texts import say
from bot.window import discover_window
from memory.tokens import is_native

_PROBE_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def check_window(settings: Settings) -> list[Check]:
    window = await discover_window(settings)
    checks = [
        Check(
            "context window", True, say("doctor.window", tokens=window.tokens, source=window.source)
        )
    ]
    if settings.context_tokens and window.reported and settings.context_tokens > window.reported:
        checks.append(
            Check(
                "context window setting",
                False,
                say(
                    "doctor.window.over", setting=settings.context_tokens, reported=window.reported
                ),
                say("doctor.window.over_fix", reported=window.reported),
            )
        )
    return checks


async def check_counting(settings: Settings) -> Check:
    native = is_native(settings.model)
    tokenizer = await open_tokenizer(
        settings.tokenizer, settings.openai_base_url, settings.model, native
    )
    if tokenizer is not None:
        await tokenizer.close()
        return Check("token counts", True, say("doctor.tokens.exact", source=tokenizer.source))
    key = "doctor.tokens.native" if native else "doctor.tokens.calibrated"
    return Check("token counts", True, say(key))


async def check_tools(chat: ChatClient) -> Check:
    """Offer a tool the question can only be answered with; a model that calls it will call
    web search too."""
    reply = chat.stream(
        [{"role": "user", "content": "What time is it in Seoul? Use the get_time tool."}],
        tools=[_PROBE_TOOL],
    )
    try:
        async for _piece in reply:
            pass
    except ChatError as error:
        return Check(
            "tool calling",
            False,
            say("doctor.tools.failed", detail=error.detail[:200]),
            say("doctor.tools.ignored_fix"),
        )
    if reply.tool_calls:
        return Check("tool calling", True, say("doctor.tools.ok"))
    return Check(
        "tool calling", False, say("doctor.tools.ignored"), say("doctor.tools.ignored_fix")
    )


async def check_embeddings(chat: ChatClient, model: str) -> Check:
    try:
        found = await chat.embed(model, ["Parley checks its embeddings."], waiting=True)
    except ChatError as error:
        return Check(
            "embeddings",
            False,
            say("doctor.embeddings.failed", model=model, detail=error.detail[:200]),
            say("doctor.embeddings.fix"),
        )
    if found.per_token:
        return Check("embeddings", True, say("doctor.embeddings.per_token", model=model))
    size = len(found.vectors[0]) if found.vectors else 0
    return Check("embeddings", True, say("doctor.embeddings.ok", model=model, size=size))


async def check_capabilities(settings: Settings, chat: ChatClient) -> list[Check]:
    checks = [*await check_window(settings), await check_counting(settings)]
    if settings.search_provider != "off" and settings.search_mode == "tool":
        checks.append(await check_tools(chat))
    if settings.embedding_model:
        checks.append(await check_embeddings(chat, settings.embedding_model))
    return checks
