"""PostgreSQL: recall reads a word's newest messages from an index alone.

Recall reads, per search word, the newest 200 messages of the conversation holding it. Through
the `search` tsvector (GIN, or the conversation's id index backwards) PostgreSQL read the row
of every message holding the word before keeping the newest: 6-10 ms for a middle-frequency
word at a million messages, growing with the history. `message_words(conversation_id, word, id)`,
filled from each message's tsvector by triggers, has them in order in its primary key: an
index-only backward scan that stops after 200 (memory/ranking.py). The messages' GIN index has
no reader left and is dropped. SQLite keeps FTS5, whose index already reads this way.

Revision ID: 0012_message_words
Revises: 0011_inbound
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

from memory.fulltext_schema import create_message_words, drop_message_words

revision = "0012_message_words"
down_revision = "0011_inbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # No message may be stored between the fill and the triggers (reads go on meanwhile).
    op.execute("LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE")
    create_message_words()
    op.execute("DROP INDEX ix_messages_search")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    drop_message_words()
    op.execute("CREATE INDEX ix_messages_search ON messages USING GIN (search)")
