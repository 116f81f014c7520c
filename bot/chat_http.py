"""The chat endpoint's streamed POST, sent through aiohttp.

Through the openai package a streamed request cost ~1.3 ms of CPU here (its request options,
httpx2, httpcore2 and anyio) against ~0.2 ms through aiohttp: about a seventh of a reply's CPU
around the model. The request carries the openai client's own address and headers (key,
organization, project), and failures are raised as the openai package's exceptions, so they are
sorted like every other call to the endpoint (`bot.chat_errors.classify`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx2
import openai
from aiohttp.helpers import get_env_proxy_for_url
from openai import AsyncOpenAI
from yarl import URL

# What the openai package raises for each status (anything else >= 500: InternalServerError).
_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}
# After `[DONE]` the rest of the body is read (so the connection is reused) for at most this
# long; a server that keeps it open costs its connection, never the finished reply.
_DRAIN_SECONDS = 0.1
# Connections open at once, as the openai client's pool (aiohttp's default is 100): replies in
# flight are capped by PARLEY_MAX_CONCURRENT_REPLIES, not here.
_CONNECTIONS = 1000


class ChatHttp:
    """POSTs chat requests to `client`'s endpoint with its headers, one session per client."""

    def __init__(self, client: AsyncOpenAI, timeout: float) -> None:
        self._client = client
        url = URL(str(client.base_url).rstrip("/") + "/chat/completions")
        # Credentials in the address replace the key, as the openai client's httpx2 did: a
        # proxy's basic auth. They stay out of the address, so no error message shows them.
        basic = aiohttp.BasicAuth.from_url(url)
        self._basic = {"Authorization": basic.encode()} if basic else None
        self._url = url.with_user(None)
        # The environment's proxy (HTTPS_PROXY, NO_PROXY…), read once as httpx2 did: aiohttp's
        # `trust_env` reads it, and ~/.netrc, in a worker thread on every request.
        try:
            self._proxy: tuple[URL | None, aiohttp.BasicAuth | None] = get_env_proxy_for_url(url)
        except LookupError:
            self._proxy = (None, None)
        # As the openai client's float timeout: connecting, and each wait for more bytes.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _request(self) -> httpx2.Request:
        """The request as the openai package's exceptions describe it (built on failure only)."""
        return httpx2.Request("POST", str(self._url))

    def _opened(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop.
        if self._session is None:
            client = self._client
            sent = {**client.default_headers, **(self._basic or client.auth_headers)}
            headers = {k: v for k, v in sent.items() if isinstance(v, str)}  # not the Omit()s
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=_CONNECTIONS),
                headers=headers,
                timeout=self._timeout,
            )
        return self._session

    async def post(self, body: bytes) -> StreamedReply:
        """Send `body` (JSON) and return once the reply's headers arrived; raise the openai
        package's error for a failed status, a timeout or an unreachable endpoint."""
        try:
            proxy, proxy_auth = self._proxy
            response = await self._opened().post(
                self._url, data=body, proxy=proxy, proxy_auth=proxy_auth
            )
        except TimeoutError as exc:  # before ClientError: aiohttp's timeouts are both
            raise openai.APITimeoutError(self._request()) from exc
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(message=str(exc), request=self._request()) from exc
        if not 200 <= response.status < 300:
            raise await self._status_error(response)
        return StreamedReply(response, self._request)

    async def _status_error(self, response: aiohttp.ClientResponse) -> openai.APIStatusError:
        """The error the openai package raises for this status, with the body the server sent."""
        try:
            raw = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raw = b""  # the status alone still tells what failed
        finally:
            response.release()
        text = raw.decode("utf-8", "replace").strip()
        try:
            body: object = json.loads(text)
        except ValueError:
            body = text
        error = body.get("error", body) if isinstance(body, dict) else body
        said = error.get("message") if isinstance(error, dict) else None
        message = f"Error code: {response.status}"
        if isinstance(said, str) and said:  # an empty message adds nothing
            message += f" - {said}"
        kind = _STATUS_ERRORS.get(response.status)
        if kind is None:
            kind = openai.InternalServerError if response.status >= 500 else openai.APIStatusError
        answered = httpx2.Response(
            response.status,
            headers=list(response.headers.items()),
            content=raw,
            request=self._request(),
        )
        return kind(message, response=answered, body=error)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class StreamedReply:
    """A reply's server-sent events: each chunk's JSON as sent, up to `[DONE]`."""

    def __init__(
        self, response: aiohttp.ClientResponse, request: Callable[[], httpx2.Request]
    ) -> None:
        self._response = response
        self._request = request

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """The chunks; raise the openai package's errors for an error event, malformed data, a
        timeout or a dropped connection. Closing the iterator early drops the connection."""
        try:
            async for data in _event_data(self._response.content):
                if data.startswith("[DONE]"):
                    await self._drain()
                    return
                chunk = self._decoded(data)
                if isinstance(chunk, dict):  # anything else carries nothing to read
                    yield chunk
        except TimeoutError as exc:
            raise openai.APITimeoutError(self._request()) from exc
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(message=str(exc), request=self._request()) from exc
        finally:
            self._response.release()

    def _decoded(self, data: str) -> object:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise openai.APIError(
                "the endpoint sent malformed JSON in its stream", self._request(), body=None
            ) from exc
        if isinstance(chunk, dict) and (error := chunk.get("error")):
            said = error.get("message") if isinstance(error, dict) else None
            message = (
                said if isinstance(said, str) and said else "An error occurred during streaming"
            )
            raise openai.APIError(message, self._request(), body=error)
        return chunk

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(_DRAIN_SECONDS):
                await self._response.read()
        except (aiohttp.ClientError, TimeoutError):
            self._response.close()  # the reply is complete: only the connection is lost


async def _event_data(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The `data` of each server-sent event (its lines joined); other fields and comments carry
    nothing for chat. Read in pieces, not lines: aiohttp's line reader refuses lines over 128 KB,
    and one chunk may carry a whole long answer."""
    data: list[str] = []
    pending = b""
    async for piece in content.iter_any():
        *lines, pending = (pending + piece).split(b"\n")
        for line in lines:
            if line in (b"", b"\r"):  # an event ends
                if data:
                    yield "\n".join(data)
                    data = []
            elif (value := _data(line)) is not None:
                data.append(value)
    if (value := _data(pending)) is not None:  # the body ended without a line break
        data.append(value)
    if data:
        yield "\n".join(data)


def _data(line: bytes) -> str | None:
    """A `data:` line's value (one leading space is not part of it)."""
    if not line.startswith(b"data:"):
        return None
    value = line[5:].removesuffix(b"\r")
    return value.removeprefix(b" ").decode("utf-8", "replace")
