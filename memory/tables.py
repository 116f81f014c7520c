"""The schema. Change it only together with a migration in memory/migrations/versions/."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SQLColumnExpression,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit id.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", "thread"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(128))
    thread: Mapped[str] = mapped_column(String(128), default="")
    # A `ChannelKind`: "" (unknown) for conversations older than migration 0006 until seen again.
    kind: Mapped[str] = mapped_column(String(16), default="", server_default="")
    persona: Mapped[str | None] = mapped_column(Text, default=None)
    # `reset` starts afresh without destroying history: the window only reads messages after this.
    reset_after: Mapped[int] = mapped_column(BigId, default=0)
    # Set with `/listen` on a channel's top level (thread ""): answer every message there.
    listening: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "platform_message_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_author_id", "author_id"),
        Index("ix_messages_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str] = mapped_column(String(128))
    author_name: Mapped[str] = mapped_column(String(256))
    content: Mapped[str] = mapped_column(Text)
    # Tokens of the message as it appears in the prompt, counted once when stored.
    tokens: Mapped[int] = mapped_column(Integer)
    platform_message_id: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Analyzed words of Korean/Chinese/Japanese content, indexed beside it (memory/analysis.py).
    terms: Mapped[str | None] = mapped_column(Text, default=None)


# Inbound items still to be answered or being answered, as SQL written out: a partial index is
# used only for a query that repeats its condition (SQLite: word for word, with no parameters).
_OPEN_ITEM = "state IN ('pending', 'answering')"


def open_item(state: SQLColumnExpression[str]) -> ColumnElement[bool]:
    """`_OPEN_ITEM` for `state` (of `InboundItem` or an alias of it)."""
    return state.in_([literal_column("'pending'"), literal_column("'answering'")])


def _open_index(name: str, *columns: str) -> Index:
    return Index(name, *columns, postgresql_where=text(_OPEN_ITEM), sqlite_where=text(_OPEN_ITEM))


class InboundItem(Base):
    """A message (or command) a platform delivered, stored before the platform is told it
    arrived: the work item the answering workers claim (see `memory.inbound`). Unique per
    platform event, so a re-delivery is recognised here and nowhere else."""

    __tablename__ = "inbound"
    __table_args__ = (
        UniqueConstraint("platform", "event_key"),
        Index("ix_inbound_conversation_order_key", "conversation", "order_key"),
        # The claim reads open items only, however many finished ones the table keeps
        # (`memory.privacy` deletes them after weeks).
        _open_index("ix_inbound_open_id", "id"),
        _open_index("ix_inbound_open_conversation", "conversation", "order_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(256))
    # The conversation key as one string: claims compare it in a correlated subquery.
    conversation: Mapped[str] = mapped_column(String(512))
    # The platform's order (Slack ts, Discord snowflake), padded so text order is that order.
    order_key: Mapped[str] = mapped_column(String(40))
    lane: Mapped[str] = mapped_column(String(64))  # which processes may answer it
    message: Mapped[str] = mapped_column(Text)  # the neutral message as JSON; "" once done
    route: Mapped[str] = mapped_column(Text)  # the adapter's own JSON; "" once done
    state: Mapped[str] = mapped_column(String(16))  # pending, answering, answered, missed
    owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)  # Unix time
    received_at: Mapped[float] = mapped_column(Float)  # Unix time


class ReplyInFlight(Base):
    """A reply being shown on a platform, with the ids of the messages posted for it so far
    (a JSON list). Deleted once delivered: a row whose process holds no live claim any more is a
    reply a crash cut off (see `memory.inflight`)."""

    __tablename__ = "replies_in_flight"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(128))
    posted: Mapped[str] = mapped_column(Text, default="[]")
    # The process showing it (`memory.inbound` claims); None: written before 0011_inbound.
    owner: Mapped[str | None] = mapped_column(String(64), default=None)
    # What the reply shows once finished, written just before its last edit (None: unfinished).
    final: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# Full-text indexes live outside the ORM (migrations 0002, 0008): FTS5 tables on SQLite, a
# generated `search` tsvector column on PostgreSQL.


class Document(Base):
    """A file shared in a conversation; its text is kept as recallable passages."""

    __tablename__ = "documents"
    __table_args__ = (
        Index(
            "ix_documents_conversation_id_content_sha256",
            "conversation_id",
            "content_sha256",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[str] = mapped_column(String(128), index=True)
    author_name: Mapped[str] = mapped_column(String(256))
    filename: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    # The same bytes shared again in the conversation are not stored twice.
    content_sha256: Mapped[str | None] = mapped_column(String(64), default=None)


class Passage(Base):
    __tablename__ = "document_passages"
    __table_args__ = (Index("ix_document_passages_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    # Denormalized so the index can be restricted to a conversation without a join.
    conversation_id: Mapped[int] = mapped_column(BigId)
    content: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer)
    terms: Mapped[str | None] = mapped_column(Text, default=None)  # as Message.terms


class Summary(Base):
    """The rolling summary of a conversation's messages up to `covers_until` (a message id)."""

    __tablename__ = "summaries"

    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[str] = mapped_column(Text)
    covers_until: Mapped[int] = mapped_column(BigId)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Calibration(Base):
    """How many of a model's own tokens one counted (tiktoken) token is, learnt from the server,
    per script of the text (Hangul, CJK, …): the budget is scaled by it."""

    __tablename__ = "calibrations"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    script: Mapped[str] = mapped_column(String(16), primary_key=True)
    ratio: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _vectors(name: str, described: str) -> Table:
    """Embeddings (packed float32, see memory/embeddings.py) of the rows of `described`, under
    `model`; `id` is the described row's id."""
    return Table(
        name,
        Base.metadata,
        Column("id", BigId, ForeignKey(f"{described}.id", ondelete="CASCADE"), primary_key=True),
        Column(
            "conversation_id",
            BigId,
            ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("model", String(128), nullable=False),
        Column("vector", LargeBinary, nullable=False),
        Index(f"ix_{name}_conversation_id_model_id", "conversation_id", "model", "id"),
    )


MessageVectors = _vectors("message_vectors", "messages")
PassageVectors = _vectors("passage_vectors", "document_passages")


class UsageDay(Base):
    """Model calls of one day, summed per person, conversation, model and kind of call."""

    __tablename__ = "usage"
    __table_args__ = (
        UniqueConstraint("day", "platform", "user_id", "conversation_id", "model", "kind"),
        Index("ix_usage_platform_user_id_day", "platform", "user_id", "day"),
        Index("ix_usage_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)  # UTC
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))  # "" when no person asked (e.g. the CLI)
    conversation_id: Mapped[int] = mapped_column(BigId)  # 0 outside a conversation
    model: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # reply, tool, summary, embedding
    calls: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    reply_tokens: Mapped[int] = mapped_column(BigInteger)
    # Calls whose tokens Parley counted itself (the endpoint reported none).
    estimated_calls: Mapped[int] = mapped_column(Integer)


class RateEvent(Base):
    """A message a person sent to the model: the last minute's make up the per-minute limit."""

    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_platform_user_id_at", "platform", "user_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[float] = mapped_column(Float)  # Unix time: compared the same on every database
