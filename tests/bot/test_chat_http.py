"""The chat stream's wire (bot/chat_http.py): server-sent events however a server frames them,
its errors sorted like the openai package's, its headers the openai client's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from bot.chat import ChatClient, ChatError, StreamCut, _encode_json
from bot.messages import Outcome
from tests.conftest import SettingsFactory
from tests.fakes.serve import serve


def _chunk(text: str) -> dict[str, object]:
    return {"choices": [{"delta": {"content": text}}]}


def _finish() -> dict[str, object]:
    return {"choices": [{"delta": {}, "finish_reason": "stop"}]}


def _data(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


@dataclass(frozen=True)
class Endpoint:
    chat: ChatClient  # a client of it
    received: list[tuple[CIMultiDictProxy[str], object]]  # requests' headers and JSON bodies
    port: int


@asynccontextmanager
async def _client(
    make_settings: SettingsFactory, pieces: list[bytes], hold: float = 0.0, status: int = 200
) -> AsyncIterator[Endpoint]:
    """A ChatClient whose endpoint writes `pieces` one write each (then keeps the connection
    open `hold` seconds before ending the body)."""
    received: list[tuple[CIMultiDictProxy[str], object]] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        received.append((request.headers, await request.json()))
        response = web.StreamResponse(status=status, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0.01)  # separate reads on the client's side
        await asyncio.sleep(hold)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    async with serve(app) as port:
        chat = ChatClient(
            make_settings(openai_base_url=f"http://127.0.0.1:{port}/v1", model_retries=0)
        )
        try:
            yield Endpoint(chat, received, port)
        finally:
            await chat.close()


async def _text(chat: ChatClient) -> str:
    return "".join([piece async for piece in chat.stream([{"role": "user", "content": "x"}])])


def test_request_bodies_are_the_bytes_json_dumps_writes() -> None:
    """The body is encoded with msgspec for speed; its bytes stay those of compact
    `json.dumps(..., ensure_ascii=False)`: every escape, non-ASCII text as UTF-8."""
    tricky = "".join(map(chr, range(256))) + '\u2028\u2029\ufeff 한국어 \U0001f600 </x> \\ "'
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": tricky}, {"role": "assistant", "content": ""}],
        "stream": True,
        "max_tokens": 2**40,
        "tools": [{"type": "function", "parameters": {"required": [], "x": None}}],
    }
    expected = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert _encode_json(body) == expected
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate fails as it did
        _encode_json({"content": "\ud800"})


async def test_events_are_read_however_the_server_frames_them(
    make_settings: SettingsFactory,
) -> None:
    """CRLF line ends, comments and other fields, a data line split across writes, `data:`
    without its space, an event's data on two lines, and one chunk larger than 128 KB."""
    long = "word " * 40_000
    two_lines = json.dumps(_chunk("B")).replace('"delta": ', '"delta":\n').encode()
    pieces = [
        b": keep-alive\r\n\r\n",
        b"event: message\r\nid: 1\r\n" + _data(_chunk("A")).replace(b"\n", b"\r\n"),
        b"data:" + two_lines.split(b"\n")[0] + b"\ndata: " + two_lines.split(b"\n")[1] + b"\n\n",
        _data(_chunk(long))[:70_000],
        _data(_chunk(long))[70_000:],
        _data(_finish()),
        b"data: [DONE]\n\n",
    ]
    async with _client(make_settings, pieces) as endpoint:
        chat = endpoint.chat
        assert await _text(chat) == "AB" + long


async def test_a_server_holding_the_connection_after_done_does_not_hold_the_reply(
    make_settings: SettingsFactory,
) -> None:
    pieces = [_data(_chunk("done")), _data(_finish()), b"data: [DONE]\n\n"]
    async with _client(make_settings, pieces, hold=3.0) as endpoint:
        chat = endpoint.chat
        started = time.monotonic()
        assert await _text(chat) == "done"
        assert time.monotonic() - started < 1.5


_MODEL_CRASHED = {"error": {"message": "the model crashed", "type": "server_error"}}


@pytest.mark.parametrize(
    ("pieces", "status", "outcome", "words"),
    [
        ([_data(_MODEL_CRASHED)], 200, Outcome.SERVER_ERROR, "the model crashed"),
        ([b"data: {not json\n\n"], 200, Outcome.SERVER_ERROR, "malformed"),
        (
            [b'{"error": {"message": "no such model: tiny", "code": "model_not_found"}}'],
            404,
            Outcome.MODEL_NOT_FOUND,
            "no such model: tiny",
        ),
        ([b"upstream exploded"], 502, Outcome.SERVER_ERROR, "upstream exploded"),
    ],
    ids=["error event", "malformed data", "404 with the server's words", "502 in plain text"],
)
async def test_a_failure_is_a_chat_error_with_the_servers_words(
    make_settings: SettingsFactory, pieces: list[bytes], status: int, outcome: Outcome, words: str
) -> None:
    """Sorted as the openai package's errors are, never a crash (malformed JSON included)."""
    async with _client(make_settings, pieces, status=status) as endpoint:
        with pytest.raises(ChatError) as failed:
            await _text(endpoint.chat)
    assert failed.value.outcome is outcome and words in failed.value.detail


async def test_an_error_event_after_text_is_a_cut(make_settings: SettingsFactory) -> None:
    async with _client(make_settings, [_data(_chunk("Half")), _data(_MODEL_CRASHED)]) as endpoint:
        with pytest.raises(StreamCut):
            await _text(endpoint.chat)


async def test_requests_carry_the_openai_clients_headers(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key as a bearer token, and the organization and project the openai package reads
    from the environment (embeddings and moderation go through it with the same)."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org-parley")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-parley")
    pieces = [_data(_chunk("hi")), _data(_finish()), b"data: [DONE]\n\n"]
    async with _client(make_settings, pieces) as endpoint:
        chat, received = endpoint.chat, endpoint.received
        assert await _text(chat) == "hi"
        assert await _text(chat) == "hi"
    headers, body = received[-1]
    assert headers["Authorization"] == f"Bearer {make_settings().openai_api_key}"
    assert headers["OpenAI-Organization"] == "org-parley"
    assert headers["OpenAI-Project"] == "proj-parley"
    assert headers["Content-Type"] == "application/json"
    assert isinstance(body, dict) and body["stream"] is True


async def test_credentials_in_the_address_are_sent_as_basic_auth_not_shown(
    make_settings: SettingsFactory,
) -> None:
    """A proxy's user and password in PARLEY's address replace the key (as the openai client
    did), and stay out of what an error says."""
    async with _client(make_settings, [b"no"], status=503) as endpoint:
        received, port = endpoint.received, endpoint.port
        proxied = ChatClient(
            make_settings(
                openai_base_url=f"http://parley:hunter2@127.0.0.1:{port}/v1", model_retries=0
            )
        )
        try:
            with pytest.raises(ChatError) as failed:
                await _text(proxied)
        finally:
            await proxied.close()
    assert received[-1][0]["Authorization"] == "Basic cGFybGV5Omh1bnRlcjI="
    assert "hunter2" not in str(failed.value) and "hunter2" not in repr(failed.value.__cause__)


async def test_the_environments_proxy_carries_the_requests(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY is honoured (read once, not per request): the endpoint's host need not
    resolve, the proxy (here the fake endpoint itself) receives the request."""
    pieces = [_data(_chunk("via proxy")), _data(_finish()), b"data: [DONE]\n\n"]
    async with _client(make_settings, pieces) as endpoint:
        received = endpoint.received
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{endpoint.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        proxied = ChatClient(
            make_settings(openai_base_url="http://model.invalid/v1", model_retries=0)
        )
        try:
            assert await _text(proxied) == "via proxy"
        finally:
            await proxied.close()
    assert received[-1][0]["Host"] == "model.invalid"
