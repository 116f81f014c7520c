"""The durable message pipeline: store, then acknowledge; answer from the database.

An adapter hands what it received to `Parley.accept` before it acknowledges the platform: the
message is stored in the inbound queue (`memory.inbound`), where its platform id is unique, so a
re-delivery is recognised whichever process it reaches. A bounded pool of workers claims stored
items, one conversation at a time and in the platform's order, and hands each to the `Responder`
its adapter registered for the item's lane; the item is ended in the transaction that stores
the reply (`finishing`), or once a failure, a command's answer or a notice was shown. A burst
larger than the workers waits in the database, not in memory.

Items of a process that died are taken over when their lease runs out; at start-up, items
older than the resume window (and while running, expired claims that old) are marked missed
and get no reply: answering a question long after it was asked helps no one.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import Update
from sqlalchemy.exc import SQLAlchemyError

from bot.lifecycle import ReplyGate
from bot.messages import Inbound
from bot.queued import Route, from_data, to_data
from memory.inbound import Claimed, InboundQueue, NewItem, State, conversation_of, order_key

log = logging.getLogger(__name__)

# Seconds between looks for items stored by other processes (this process's wake at once).
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Job:
    """A stored message to answer now, as its adapter handed it over."""

    message: Inbound
    route: dict[str, Any]
    catch_up: bool  # called in by a mention or a reply: read what was said before first


class Responder(Protocol):
    """An adapter's side: shows the answer to `job` on its platform (name look-ups, downloads,
    catching up and `Parley.deliver` happen here, when the job's turn has come)."""

    async def answer(self, job: Job) -> None: ...

    async def mend(self) -> None:
        """Edit replies a dead process left half-shown into a notice (`Delivery.left_over`);
        called now and then, as other processes may die at any time."""


@dataclass
class _Working:
    """The item the current task answers: ended with its reply, or by the worker."""

    id: int
    ended: bool = False


_working: contextvars.ContextVar[_Working | None] = contextvars.ContextVar(
    "parley_inbound_item", default=None
)


class _Woken(Enum):
    STORED = "stored"  # a message was stored here
    LOOK = "look"  # look for messages stored elsewhere or earlier
    OWED = "owed"  # look again after an answer


class _Wakeups:
    """Wake-ups of idle workers: none is lost (a semaphore), each wakes one worker."""

    def __init__(self) -> None:
        self._semaphore = asyncio.Semaphore(0)
        self._looks = 0
        self.owed = 0  # wake-ups for stored messages that found nothing

    def stored(self) -> None:
        self._semaphore.release()

    def look(self) -> None:
        self._looks += 1
        self._semaphore.release()

    async def wait(self, poll: float | None) -> _Woken:
        try:
            async with asyncio.timeout(poll):
                await self._semaphore.acquire()
        except TimeoutError:
            return _Woken.LOOK
        if self._looks:
            self._looks -= 1
            return _Woken.LOOK
        return _Woken.STORED


def event_key(message: Inbound) -> str:
    """A message's id, unique on its platform (ids are unique per channel at least); one
    without an id cannot be re-delivered recognisably, so it gets one of its own."""
    return f"{message.key.channel}/{message.message_id or uuid.uuid4().hex}"


def _item(message: Inbound, route: Route, body: dict[str, Any] | None = None) -> NewItem:
    """The queue's row for `message` (`body`: what answering it needs; none: recorded only)."""
    return NewItem(
        platform=message.key.platform,
        event_key=event_key(message),
        conversation=conversation_of(message.key),
        order_key=order_key(route.order),
        lane=route.lane,
        message=json.dumps(body, ensure_ascii=False) if body else "",
        route=json.dumps(route.data, ensure_ascii=False) if body else "",
    )


class Pipeline:
    def __init__(
        self, queue: InboundQueue, gate: ReplyGate, workers: int, resume_window: float
    ) -> None:
        self.queue = queue
        self.gate = gate
        self.workers = workers
        self.resume_window = resume_window
        self.responders: dict[str, Responder] = {}
        self.missed = 0  # items marked missed by this process
        self._wakeups = _Wakeups()
        self._tasks: list[asyncio.Task[None]] = []

    async def store(self, message: Inbound, route: Route, catch_up: bool) -> bool:
        """Store a message to answer; False when it was stored before (a re-delivery)."""
        body = {"catch_up": catch_up, "message": to_data(message)}
        if await self.queue.add(_item(message, route, body)) is None:
            return False
        self._wakeups.stored()
        return True

    async def remember(self, message: Inbound) -> bool:
        """Note a message that is recorded, not answered; False when it was seen before."""
        route = Route(lane=message.key.platform, order=message.message_id or "")
        return await self.queue.add(_item(message, route), State.ANSWERED) is not None

    async def forget_waiting(self, platform: str, author_id: str) -> int:
        """Drop `author_id`'s messages on `platform` that wait to be answered (`/forget me`:
        stored once answered, they would outlive the forgetting); how many. Those sent after
        the message this task answers stay: they came after the request."""
        working = _working.get()
        theirs = [
            item
            for item, text in await self.queue.waiting(
                platform, None if working is None else working.id
            )
            if text and from_data(json.loads(text)["message"]).author.id == author_id
        ]
        return await self.queue.drop(theirs)

    def finishing(self) -> Update | None:
        """The statement ending the item this task answers, to run in the transaction that
        stores its reply (None outside the pipeline: the terminal, tests)."""
        working = _working.get()
        if working is None or working.ended:
            return None
        working.ended = True
        return self.queue.finishing(working.id)

    async def serve(self, lane: str, responder: Responder) -> None:
        """Answer the items of `lane` with `responder`, from now on (an adapter calls it once
        it can show replies, before it takes events)."""
        self.responders[lane] = responder
        if await self.queue.expire_dead():
            log.info("taking over the messages a stopped process on this host was answering")
        missed = await self.queue.miss_stale([lane], self.resume_window, pending=True)
        self._missed(missed, lane)
        if self._tasks:  # a lane added later: look for its messages
            self._wakeups.look()
            return
        self._tasks = [asyncio.create_task(self._work(n == 0)) for n in range(self.workers)]
        self._tasks.append(asyncio.create_task(self._sweep()))

    async def stop(self) -> None:
        """Stop the workers (after the gate closed: replies in progress are finished), and give
        back what they had claimed but not started, for the next start or another process."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tasks:
            try:
                await self.queue.release_all()
            except SQLAlchemyError:  # their leases run out instead
                log.exception("could not give back unanswered messages")
        self._tasks = []

    def _missed(self, count: int, lane: str) -> None:
        if count:
            self.missed += count
            log.warning(
                "%d unanswered messages in %s were older than the resume window (%.0f s): "
                "marked missed, not answered",
                count,
                lane,
                self.resume_window,
            )

    async def _work(self, poller: bool) -> None:
        """Claim and answer until the shutdown. Idle workers wait for a wake-up (`_Wakeups`):
        a message stored here wakes one; a message found by looking (at start, by the poller
        every POLL_SECONDS, by a worker so woken) wakes another, as more may wait. A stored
        message's wake-up that found nothing may mean it waits for its conversation's earlier
        one: after an answer, a worker looks again while such wake-ups are owed."""
        woken = _Woken.LOOK  # at start: messages from before may wait
        while not self.gate.closing:
            try:
                claimed = await self.queue.claim(list(self.responders))
            except SQLAlchemyError:
                log.exception("could not claim a stored message; trying again")
                claimed = None
            if claimed is not None and self.gate.closing:  # left for the next start
                await self.queue.release(claimed.id)
                return
            if claimed is None:
                if woken is _Woken.STORED:
                    self._wakeups.owed += 1
            else:
                if woken is _Woken.LOOK:
                    self._wakeups.look()
                await self._answer(claimed)
                if self._wakeups.owed:
                    self._wakeups.owed -= 1
                    woken = _Woken.OWED
                    continue
            woken = await self._wakeups.wait(POLL_SECONDS if poller else None)

    async def _answer(self, claimed: Claimed) -> None:
        working = _Working(claimed.id)
        _working.set(working)
        renewing = asyncio.create_task(self._renew(claimed.id))
        try:
            stored = json.loads(claimed.message)
            job = Job(from_data(stored["message"]), json.loads(claimed.route), stored["catch_up"])
            with self.gate.track():  # the shutdown waits until the item is ended too
                try:
                    await self.responders[claimed.lane].answer(job)
                except asyncio.CancelledError:  # cut off by the shutdown: the person was told
                    await asyncio.shield(self._end(working))
                    raise
                except Exception:  # one message's failure must not stop the worker
                    log.exception("answering stored message %d failed", claimed.id)
                await self._end(working)
        finally:
            renewing.cancel()

    async def _end(self, working: _Working) -> None:
        if working.ended:
            return
        working.ended = True
        try:
            await self.queue.finish(working.id)
        except SQLAlchemyError:  # it will be answered again once its lease runs out
            log.exception("could not mark stored message %d answered", working.id)

    async def _renew(self, item: int) -> None:
        while True:
            await asyncio.sleep(self.queue.lease / 3)
            try:
                if not await self.queue.renew(item):
                    log.warning("lost the claim on stored message %d (lease ran out)", item)
                    return
            except SQLAlchemyError:
                log.exception("could not renew the claim on stored message %d", item)

    async def _sweep(self) -> None:
        """What dead processes left: claims older than the resume window (missed), and replies
        half-shown (mended by their adapters). Looked for a few times a lease, so what a dead
        process showed is mended soon after its claims run out."""
        while True:
            await asyncio.sleep(self.queue.lease / 3)
            lanes = list(self.responders)
            try:
                count = await self.queue.miss_stale(lanes, self.resume_window, pending=False)
                self._missed(count, ", ".join(lanes))
            except SQLAlchemyError:
                log.exception("could not look for stale claims")
            for responder in {id(r): r for r in self.responders.values()}.values():
                try:
                    await responder.mend()
                except Exception:  # a platform or network failure: try again next time
                    log.exception("could not mend replies stopped processes left")
