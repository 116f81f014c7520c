"""Files shared with a message, for every platform: text files are read into the message (size
bounded), images go to the model only when it has vision, and the person is told what was
skipped. Adapters download only what `should_download` accepts.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from openai.types.chat import ChatCompletionContentPartImageParam, ChatCompletionContentPartParam

from bot.chat import ChatMessage, text_of
from bot.messages import Attachment
from bot.settings import Settings
from bot.texts import say
from memory.documents import document_kind, is_text

ChatPart = ChatCompletionContentPartImageParam


class Kind(Enum):
    TEXT = "text"
    IMAGE = "image"
    OTHER = "other"


def kind(filename: str, content_type: str) -> Kind:
    mime = content_type.split(";")[0].strip().lower()
    if mime.startswith("image/"):
        return Kind.IMAGE
    if is_text(filename, content_type):
        return Kind.TEXT
    return Kind.OTHER


def should_download(filename: str, content_type: str, size: int, settings: Settings) -> bool:
    """Whether an adapter should fetch this file's bytes for `prepare`."""
    if size > settings.attachment_max_bytes:
        return False
    found = kind(filename, content_type)
    # PDFs are not read into the message, but become recallable documents (memory.documents).
    return (
        found is Kind.TEXT
        or (found is Kind.IMAGE and settings.vision)
        or document_kind(filename, content_type) is not None
    )


@dataclass(frozen=True)
class Prepared:
    text: str  # the message with text files inlined and other files named, as stored
    answerable: bool  # there is something for the model: text, a read file or an image
    images: tuple[ChatPart, ...] = ()  # for this message's prompt only
    notice: str = ""  # what was skipped, for the person ("" if nothing)


def _size(limit: int) -> str:
    if limit >= 1_000_000:
        return f"{limit / 1e6:g} MB"
    return f"{limit / 1e3:g} kB" if limit >= 1000 else f"{limit} bytes"


def prepare(text: str, attachments: Sequence[Attachment], settings: Settings) -> Prepared:
    """Turn a message's attachments into prompt text, image parts and a notice."""
    parts = [text] if text.strip() else []
    images: list[ChatPart] = []
    too_large: list[str] = []
    unseen: list[str] = []
    refused: list[str] = []
    foreign: list[str] = []
    limit = settings.attachment_max_bytes
    for attachment in attachments:
        name = attachment.filename
        found = kind(name, attachment.content_type)
        if attachment.refused:
            refused.append(name)
            parts.append(say("attach.other", name=name))
        elif attachment.foreign:
            foreign.append(name)
            parts.append(say("attach.other", name=name))
        elif (attachment.size or len(attachment.data)) > limit:
            too_large.append(name)
            parts.append(say("attach.not_read", name=name))
        elif found is Kind.TEXT and attachment.data:
            body = attachment.data[:limit].decode("utf-8", errors="replace")
            parts.append(say("attach.file", name=name, body=body))
        elif found is Kind.IMAGE and settings.vision and attachment.data:
            encoded = base64.b64encode(attachment.data).decode("ascii")
            url = f"data:{attachment.content_type.split(';')[0]};base64,{encoded}"
            images.append({"type": "image_url", "image_url": {"url": url}})
            parts.append(say("attach.image", name=name))
        elif found is Kind.IMAGE:
            unseen.append(name)
            parts.append(say("attach.image_not_shown", name=name))
        else:
            parts.append(say("attach.other", name=name))
    notes = []
    if unseen:
        notes.append(say("attach.no_vision", names=", ".join(unseen)))
    if too_large:
        notes.append(say("attach.too_large", names=", ".join(too_large), limit=_size(limit)))
    if refused:
        notes.append(say("attach.refused", names=", ".join(refused)))
    if foreign:
        notes.append(say("attach.foreign", names=", ".join(foreign)))
    answerable = (
        bool(text.strip())
        or bool(images)
        or any(kind(a.filename, a.content_type) is Kind.TEXT and a.data for a in attachments)
    )
    notice = say("attach.notice", notes=" ".join(notes)) if notes else ""
    return Prepared("\n\n".join(parts), answerable, tuple(images), notice)


def with_images(messages: list[ChatMessage], images: Sequence[ChatPart]) -> list[ChatMessage]:
    """The prompt with `images` added to its last (the current) user message."""
    if not images:
        return messages
    content: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": text_of(messages[-1])},
        *images,
    ]
    return [*messages[:-1], {"role": "user", "content": content}]
