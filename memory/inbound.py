"""The inbound queue: messages a platform delivered, stored before the platform is told they
arrived, and claimed one at a time per conversation by the answering workers of any process.

A row is unique per (platform, event key): a re-delivery (a retry, a reconnect, another
process behind a load balancer) is recognised by that constraint alone. Claims are one UPDATE
of the oldest item that is the head of its conversation (nothing earlier unfinished) and whose
conversation has no live claim; on PostgreSQL the candidate row is taken `FOR UPDATE SKIP
LOCKED`, so processes never claim one item twice or two items of one conversation at once.
A claim is a lease: renewed while the reply runs, taken over by any process serving the lane
once it expires (its process died). SQLite runs the same statements in one process.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Update,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import aliased

from memory.db import Write, alone
from memory.keys import ConversationKey
from memory.tables import InboundItem, open_item

log = logging.getLogger(__name__)

# Digits of a platform id's integer part (a Discord snowflake has at most 20) and fraction
# (a Slack ts has 6), so that comparing the padded texts compares the numbers.
_WHOLE_DIGITS = 20
_FRACTION_DIGITS = 6


class State(StrEnum):
    PENDING = "pending"
    ANSWERING = "answering"
    ANSWERED = "answered"  # also: a failure told to the person, a message only recorded
    MISSED = "missed"  # found unanswered after its resume window: no reply


FINISHED = (State.ANSWERED, State.MISSED)


@dataclass(frozen=True)
class NewItem:
    platform: str
    event_key: str  # the platform's id of the event (unique per platform)
    conversation: str  # the conversation key as one string
    order_key: str  # see `order_key`
    lane: str
    message: str  # JSON
    route: str  # JSON


@dataclass(frozen=True)
class Claimed:
    id: int
    lane: str
    message: str
    route: str
    received_at: float


def order_key(platform_id: str, fallback: float | None = None) -> str:
    """A platform id ("1700000000.000100", a snowflake) as text that sorts like the number;
    ids that are not numbers (and missing ones) sort by `fallback`, a Unix time."""
    whole, _, fraction = platform_id.partition(".")
    if not (whole.isdigit() and (fraction.isdigit() or not fraction)):
        return order_key(f"{time.time() if fallback is None else fallback:.6f}")
    fraction = fraction[:_FRACTION_DIGITS].ljust(_FRACTION_DIGITS, "0")
    return f"{whole.zfill(_WHOLE_DIGITS)}.{fraction}"


def conversation_of(key: ConversationKey) -> str:
    """The conversation key as one string (claims compare it)."""
    return json.dumps([key.workspace, key.channel, key.thread], ensure_ascii=False)


def process_owner() -> str:
    """A name for this process's claims, unique across hosts and restarts."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _host() -> str:
    return socket.gethostname()[:30]


def gone(owner: str, me: str) -> bool:
    """Whether the process named `owner` is known to be dead: one on this host whose pid no
    longer runs, or is now this process (a restart in a container reuses its pid). Processes
    elsewhere are only known dead once their claims run out."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != _host() or not pid.isdigit() or owner == me:
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _open(item: type[InboundItem], now: float | BindParameter[float]) -> ColumnElement[bool]:
    """Waiting to be answered: pending, or claimed by a process whose lease ran out."""
    return and_(
        open_item(item.state),
        or_(item.state == State.PENDING, item.lease_until < now),
    )


def _claiming(locking: bool) -> Update:
    """The claim: the oldest open item of the lanes whose conversation has nothing earlier
    unfinished and no live claim, taken with a lease (parameters: lanes, now, claimer, until).
    Each test is one probe of a partial index of open items: the plan stays cheap even on a
    table PostgreSQL has not analyzed yet (a new database, autovacuum off or behind)."""
    now: BindParameter[float] = bindparam("now")
    candidate = aliased(InboundItem, name="candidate")
    earlier = aliased(InboundItem, name="earlier")
    busy = aliased(InboundItem, name="busy")
    head = (  # the conversation's first open item: one step down its index
        select(earlier.order_key)
        .where(open_item(earlier.state), earlier.conversation == candidate.conversation)
        .order_by(earlier.order_key)
        .limit(1)
        .scalar_subquery()
    )
    answering = exists().where(  # someone is answering in this conversation right now
        open_item(busy.state),
        busy.conversation == candidate.conversation,
        busy.state == State.ANSWERING,
        busy.lease_until >= now,
        busy.id != candidate.id,
    )
    chosen = (
        select(candidate.id)
        .where(
            _open(candidate, now),
            candidate.lane.in_(bindparam("lanes", expanding=True)),
            candidate.order_key <= head,  # nothing earlier is still to be answered
            ~answering,
        )
        .order_by(candidate.id)
        .limit(1)
    )
    if locking:
        chosen = chosen.with_for_update(skip_locked=True)
    return (
        update(InboundItem)
        .where(InboundItem.id == chosen.scalar_subquery(), _open(InboundItem, now))
        .values(state=State.ANSWERING, owner=bindparam("claimer"), lease_until=bindparam("until"))
        .returning(
            InboundItem.id,
            InboundItem.lane,
            InboundItem.message,
            InboundItem.route,
            InboundItem.received_at,
        )
    )


# A message's own statements, built once (Core, not ORM sessions: less CPU, no garbage).
# Every delivered message: two trips to SQLite's driver (see Write).
_ADD = Write(
    insert(InboundItem).returning(InboundItem.id),
    (
        "platform",
        "event_key",
        "conversation",
        "order_key",
        "lane",
        "message",
        "route",
        "state",
        "lease_until",
        "received_at",
    ),
)
_RENEW = (
    update(InboundItem)
    .where(InboundItem.id == bindparam("item"), InboundItem.owner == bindparam("claimer"))
    .values(lease_until=bindparam("until"))
)


class InboundQueue:
    def __init__(
        self,
        engine: AsyncEngine,
        owner: str,
        lease: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        self._claim = _claiming(locking=engine.dialect.name == "postgresql")
        self.owner = owner
        self.lease = lease
        self._clock = clock

    async def add(self, item: NewItem, state: State = State.PENDING) -> int | None:
        """Store a delivered message; None when it was stored before (a re-delivery)."""
        row = {
            "platform": item.platform,
            "event_key": item.event_key,
            "conversation": item.conversation,
            "order_key": item.order_key,
            "lane": item.lane,
            "message": item.message if state is State.PENDING else "",
            "route": item.route if state is State.PENDING else "",
            "state": state,
            "lease_until": 0.0,
            "received_at": self._clock(),
        }
        try:
            [(added,)] = await _ADD.run(self._engine, row)
            return int(added)
        except IntegrityError:
            return None

    async def claim(self, lanes: Sequence[str]) -> Claimed | None:
        """Take the oldest item of `lanes` that its conversation is ready for, if any."""
        if not lanes:
            return None
        now = self._clock()
        values = {
            "lanes": list(lanes),
            "now": now,
            "claimer": self.owner,
            "until": now + self.lease,
        }
        async with alone(self._engine) as connection:
            row = (await connection.execute(self._claim, values)).first()
        return None if row is None else Claimed(*row)

    async def renew(self, item: int) -> bool:
        """Extend the claim on `item` (answered, until its reply is shown); False if this
        process no longer holds it."""
        values = {"item": item, "claimer": self.owner, "until": self._clock() + self.lease}
        async with alone(self._engine) as connection:
            result = await connection.execute(_RENEW, values)
        return bool(result.rowcount)

    def finishing(self, item: int, state: State = State.ANSWERED) -> Update:
        """The statement that ends `item` (run it in the transaction that stores the reply, so
        a restart never answers it twice). Its text is dropped: history keeps it. The claim
        stays (renewed until the reply is shown): it tells other processes this one lives."""
        return (
            update(InboundItem)
            .where(InboundItem.id == item, InboundItem.owner == self.owner)
            .values(state=state, message="", route="")
        )

    async def finish(self, item: int, state: State = State.ANSWERED) -> bool:
        """End `item`; False if it was ended already (with its reply) or taken over."""
        async with alone(self._engine) as connection:
            result = await connection.execute(
                self.finishing(item, state).where(InboundItem.state == State.ANSWERING)
            )
        return bool(result.rowcount)

    async def release(self, item: int) -> None:
        """Give `item` back unanswered (e.g. shutting down before it was started)."""
        await self._give_back(InboundItem.id == item)

    async def expire_dead(self) -> int:
        """End the claims of processes on this host that are gone (a restart need not wait
        for their leases to run out); how many processes."""
        now = self._clock()
        async with self._session() as session:
            owners = await session.scalars(
                select(InboundItem.owner)
                .where(InboundItem.owner.is_not(None), InboundItem.lease_until >= now)
                .distinct()
            )
            dead = [owner for owner in owners if owner and gone(owner, self.owner)]
            if dead:
                await session.execute(
                    update(InboundItem)
                    .where(InboundItem.owner.in_(dead), InboundItem.lease_until >= now)
                    .values(lease_until=now - 1)
                )
                await session.commit()
        return len(dead)

    async def release_all(self) -> None:
        """Give back every item this process holds (it is stopping)."""
        await self._give_back()

    async def _give_back(self, *where: ColumnElement[bool]) -> None:
        async with self._session() as session:
            await session.execute(
                update(InboundItem)
                .where(
                    InboundItem.owner == self.owner, InboundItem.state == State.ANSWERING, *where
                )
                .values(state=State.PENDING, owner=None, lease_until=0.0)
            )
            await session.commit()

    async def miss_stale(self, lanes: Sequence[str], window: float, pending: bool) -> int:
        """Mark items of `lanes` received more than `window` seconds ago whose process died
        (and, with `pending`, those never started: at start-up) as missed; how many."""
        now = self._clock()
        waiting = (
            _open(InboundItem, now)
            if pending
            else and_(InboundItem.state == State.ANSWERING, InboundItem.lease_until < now)
        )
        async with self._session() as session:
            result = await session.execute(
                update(InboundItem)
                .where(
                    InboundItem.lane.in_(lanes),
                    InboundItem.received_at < now - window,
                    waiting,
                )
                .values(state=State.MISSED, owner=None, message="", route="")
            )
            await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def waiting(self, platform: str, before: int | None = None) -> list[tuple[int, str]]:
        """Items of `platform` that no process has started (stored before item `before`, if
        given), with their message (JSON)."""
        query = select(InboundItem.id, InboundItem.message).where(
            InboundItem.platform == platform, InboundItem.state == State.PENDING
        )
        if before is not None:
            query = query.where(InboundItem.id < before)
        async with self._session() as session:
            rows = await session.execute(query)
            return [(int(id_), message) for id_, message in rows]

    async def drop(self, items: Sequence[int]) -> int:
        """End `items` unanswered, with their text, unless a process started them; how many."""
        if not items:
            return 0
        async with self._session() as session:
            result = await session.execute(
                update(InboundItem)
                .where(InboundItem.id.in_(items), InboundItem.state == State.PENDING)
                .values(state=State.MISSED, message="", route="")
            )
            await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def known(self, key: ConversationKey) -> bool:
        """Whether any message of the conversation at `key` was stored to be answered."""
        async with self._session() as session:
            found = await session.scalar(
                select(InboundItem.id)
                .where(
                    InboundItem.platform == key.platform,
                    InboundItem.conversation == conversation_of(key),
                )
                .limit(1)
            )
        return found is not None

    async def counts(self) -> dict[str, int]:
        """Items per state (for tests, metrics and benchmarks)."""
        async with self._session() as session:
            rows = await session.execute(
                select(InboundItem.state, func.count()).group_by(InboundItem.state)
            )
            return {state: int(count) for state, count in rows}
