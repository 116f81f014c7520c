"""`parley doctor`'s model checks: the endpoint answers with the key, offers the model, and
streams a short reply (a 404 from an address without /v1 is named as such); then what the
server can do: its window, how tokens are counted, tool calling and embeddings."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionFunctionToolParam

from bot.chat import ChatClient, ChatError, classify
from bot.checks import Check, Probe
from bot.messages import Outcome
from bot.model_tokenizer import open_tokenizer
from bot.settings import Settings
from bot.texts import say
from bot.window import discover_window
from memory.tokens import is_native

_MODEL_TIMEOUT = 30.0
_SHOWN_MODELS = 8


def _without_v1(url: str) -> bool:
    return "/v1" not in urlsplit(url).path


def _model_failure(
    name: str, error: ChatError, detail_key: str, url: str, **values: object
) -> Check:
    fix = say(f"doctor.fix.{error.outcome.value}")
    if error.outcome is Outcome.MODEL_NOT_FOUND and _without_v1(url):
        # A 404 from a server whose routes live under /v1 (Ollama, vLLM, LM Studio…).
        fix = say("doctor.fix.no_v1", url=url.rstrip("/") + "/v1")
    return Check(name, False, say(detail_key, detail=error.detail[:200], url=url, **values), fix)


async def _check_model_list(settings: Settings) -> list[Check]:
    """The endpoint answers with the key, and offers the model (when it lists models)."""
    url = settings.openai_base_url
    client = AsyncOpenAI(
        api_key=settings.openai_api_key or "not-needed",
        base_url=url,
        timeout=_MODEL_TIMEOUT,
        max_retries=0,
    )
    try:
        page = await client.models.list()
    except openai.APIError as exc:
        error = classify(exc)
        if error.outcome is Outcome.MODEL_NOT_FOUND and not _without_v1(url):
            # No /models route (some local servers); without /v1 it is the wrong address.
            return [Check("model endpoint", True, say("doctor.endpoint.no_list", url=url))]
        return [_model_failure("model endpoint", error, "doctor.endpoint.failed", url)]
    finally:
        await client.close()
    ids = sorted(model.id for model in page.data)
    checks = [Check("model endpoint", True, say("doctor.endpoint.ok", url=url, count=len(ids)))]
    if settings.model in ids:
        checks.append(Check("model", True, say("doctor.model.ok", model=settings.model)))
    else:
        shown = ", ".join(ids[:_SHOWN_MODELS]) + (", …" if len(ids) > _SHOWN_MODELS else "")
        checks.append(
            Check(
                "model",
                False,
                say("doctor.model.missing", model=settings.model, available=shown),
                say("doctor.fix.model_not_found"),
            )
        )
    return checks


async def _check_reply(chat: ChatClient, url: str) -> Check:
    """A tiny streamed completion, through the same client replies use."""
    started = time.perf_counter()
    try:
        async for _piece in chat.stream(
            [{"role": "user", "content": "Reply with: OK"}], max_tokens=16
        ):
            pass
    except ChatError as error:
        return _model_failure(
            "model reply", error, "doctor.reply.failed", url, outcome=error.outcome.value
        )
    return Check("model reply", True, say("doctor.reply.ok", seconds=time.perf_counter() - started))


async def check_model(probe: Probe) -> list[Check]:
    checks = await _check_model_list(probe.settings)
    if not checks[0].ok:
        return checks  # unreachable or key refused: a test reply would only repeat that
    timeout = min(probe.settings.request_timeout, _MODEL_TIMEOUT)
    update = {"max_reply_tokens": 64, "model_retries": 0, "request_timeout": timeout}
    chat = ChatClient(probe.settings.model_copy(update=update))
    try:
        reply = await _check_reply(chat, probe.settings.openai_base_url)
        more = await check_capabilities(probe.settings, chat) if reply.ok else []
    finally:
        await chat.close()
    return [*checks, reply, *more]


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
