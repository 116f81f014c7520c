"""`parley doctor`'s model checks: the endpoint answers with the key, offers the model, and
streams a short reply; a 404 from an address without /v1 is named as such."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI

from bot.chat import ChatClient, ChatError, classify
from bot.checks import Check, Probe
from bot.messages import Outcome
from bot.settings import Settings
from bot.texts import say

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


async def _check_reply(settings: Settings) -> Check:
    """A tiny streamed completion, through the same client replies use."""
    chat = ChatClient(
        settings.model_copy(
            update={
                "max_reply_tokens": 16,
                "model_retries": 0,
                "request_timeout": min(settings.request_timeout, _MODEL_TIMEOUT),
            }
        )
    )
    started = time.perf_counter()
    try:
        async for _piece in chat.stream([{"role": "user", "content": "Reply with: OK"}]):
            pass
    except ChatError as error:
        return _model_failure(
            "model reply",
            error,
            "doctor.reply.failed",
            settings.openai_base_url,
            outcome=error.outcome.value,
        )
    finally:
        await chat.close()
    return Check("model reply", True, say("doctor.reply.ok", seconds=time.perf_counter() - started))


async def check_model(probe: Probe) -> list[Check]:
    checks = await _check_model_list(probe.settings)
    if not checks[0].ok:
        return checks  # unreachable or key refused: a test reply would only repeat that
    return [*checks, await _check_reply(probe.settings)]
