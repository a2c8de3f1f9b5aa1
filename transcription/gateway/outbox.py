"""The gateway's outbox: finals and session closes are journaled before they are written.

A final must reach the client at once and must never be lost, even while PostgreSQL is down or
stalled. So every final (and every session close) is first appended to this process's journal, a
local file, and then written to the database by one writer thread, in order, retrying while the
database is unreachable. The session waits briefly for the write (so a healthy database still has
the final before the client does) but never for an outage. The writes are idempotent (a segment is
unique per session and index, closing twice changes nothing), so a journal is simply replayed
whole: at start, any journal whose process is gone (its lock is free) is written out and removed.

The journal survives a killed process (the kernel holds what was written); ``ASR_OUTBOX_FSYNC``
makes it survive a host crash too, at the cost of an fsync per final.
"""

import asyncio
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from asrplatform import process_state
from transcription import services
from transcription.engine import TranscriptEvent
from transcription.engine.events import WordTiming

logger = logging.getLogger(__name__)

RETRY_MAX_S = 5.0  # the writer's backoff while the database is unreachable
ORPHAN_SCAN_S = 30.0  # how often the writer looks for journals of processes that died


@dataclass
class Entry:
    op: dict[str, Any]
    loop: asyncio.AbstractEventLoop | None = None
    written: asyncio.Future | None = None  # resolved on ``loop`` once the database has it

    def done(self) -> None:
        if self.loop is not None and self.written is not None:
            try:
                self.loop.call_soon_threadsafe(_resolve, self.written)
            except RuntimeError:  # the loop is gone (its server shut down): nobody waits
                pass


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def final_op(tenant_id: int, session_id: uuid.UUID, event: TranscriptEvent) -> dict[str, Any]:
    words = None if event.words is None else [w.to_message() for w in event.words]
    fields = {"segment": event.segment, "text": event.text, "start": event.start, "end": event.end}
    fields |= {"reason": event.reason, "language": event.language, "words": words, "confidence": event.confidence}
    if event.channel is not None:  # journals written before channels existed replay as they are
        fields["channel"] = event.channel
    return {"kind": "final", "tenant_id": tenant_id, "session_id": str(session_id), "event": fields}


def close_op(
    tenant_id: int, session_id: uuid.UUID, close_reason: str, audio_seconds: float, resume_token_hash: str
) -> dict[str, Any]:
    """Close the row, unless a resume elsewhere replaced ``resume_token_hash`` (the session lives on)."""
    return {
        "kind": "close",
        "tenant_id": tenant_id,
        "session_id": str(session_id),
        "close_reason": close_reason,
        "audio_seconds": audio_seconds,
        "resume_token_hash": resume_token_hash,
    }


def apply(op: dict[str, Any]) -> None:
    """Write one journaled operation to the database (idempotent)."""
    if op["kind"] == "final":
        fields = op["event"]
        words = fields.pop("words", None)
        event = TranscriptEvent(
            **fields, is_final=True, words=None if words is None else tuple(WordTiming(**w) for w in words)
        )
        services.segment_store_final(tenant_id=op["tenant_id"], session_id=op["session_id"], event=event)
    elif op["kind"] == "close":
        services.session_finish(
            tenant_id=op["tenant_id"],
            session_id=op["session_id"],
            close_reason=op["close_reason"],
            audio_seconds=op["audio_seconds"],
            resume_token_hash=op.get("resume_token_hash"),
        )
    else:
        raise ValueError(f"unknown outbox operation {op['kind']!r}")


class Outbox:
    """One process's journal and its database writer thread."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"outbox-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        # Created and locked under a name other processes' replays do not look at, then renamed: a
        # replay finding it unlocked in between would take it for a dead process's and remove it.
        unseen = directory / f".{self.path.name}.new"
        self.file: IO[str] = open(unseen, "a", encoding="utf-8")  # noqa: SIM115 - held for the process's life
        fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)  # while held, no other process replays it
        os.replace(unseen, self.path)  # the lock is the open file's: it goes with it
        self.pending: deque[Entry] = deque()
        self.cond = threading.Condition()
        self.healthy = True  # false while the database refuses writes
        self.stopping = False
        self.replayed = threading.Event()  # the journals of dead processes found at start are written
        self.thread = threading.Thread(target=self._run, name="asr-outbox", daemon=True)
        self.thread.start()

    # --- the event loop's side ---------------------------------------------------------------

    async def put(self, op: dict[str, Any], *, wait_s: float) -> bool:
        """Journal ``op`` and have it written; True once it is in the database, False if it is
        still queued after ``wait_s`` (or at once while the database is known to be down)."""
        loop = asyncio.get_running_loop()
        entry = Entry(op, loop, loop.create_future())
        line = json.dumps(op, separators=(",", ":")) + "\n"
        with self.cond:
            self.file.write(line)
            self.file.flush()
            if self.fsync:
                os.fsync(self.file.fileno())
            self.pending.append(entry)
            self.cond.notify()
            healthy = self.healthy
        assert entry.written is not None
        if not healthy:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(entry.written), wait_s)
            return True
        except TimeoutError:  # the database stalls: nobody waits for it again until a write succeeds
            self.healthy = False
            return False

    async def settle(self, wait_s: float) -> None:
        """Wait (at most ``wait_s``) until everything journaled so far is written: a resume re-sends
        the finals the database holds."""
        deadline = time.monotonic() + wait_s
        while self.backlog() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def backlog(self) -> int:
        with self.cond:
            return len(self.pending)

    def close(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.thread.join(timeout=5)
        with self.cond:
            empty = not self.pending
            self.file.close()  # releases the lock: an unwritten journal is replayed by the next outbox
        if empty:
            self.path.unlink(missing_ok=True)

    # --- the writer thread -------------------------------------------------------------------

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until everything journaled (here and in dead processes' journals) is written."""
        deadline = time.monotonic() + timeout_s
        if not self.replayed.wait(timeout_s):
            return False
        while self.backlog():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _run(self) -> None:
        self._replay_orphans()
        self.replayed.set()
        last_scan = time.monotonic()
        while True:
            with self.cond:
                while not self.pending and not self.stopping:
                    self.cond.wait(timeout=ORPHAN_SCAN_S)
                    if time.monotonic() - last_scan >= ORPHAN_SCAN_S:
                        break
                if self.stopping and not self.pending:
                    break
                entry = self.pending[0] if self.pending else None
            if entry is None:
                last_scan = time.monotonic()
                self._replay_orphans()
                continue
            if not self._write(entry.op):
                continue
            with self.cond:
                self.pending.popleft()
                entry.done()
                if not self.pending:  # everything journaled is written: start the journal afresh
                    self.file.seek(0)
                    self.file.truncate()
        connection.close()

    def _write(self, op: dict[str, Any]) -> bool:
        """Write one operation, retrying while the database is unreachable; False to try again
        (only when stopping: the journal keeps it). An operation the database rejects for good
        (its session deleted) is logged and dropped so it cannot block the others."""
        delay = 0.1
        while True:
            try:
                close_old_connections()
                apply(dict(op))
                if not self.healthy:
                    logger.info("database back, writing the outbox backlog=%d", self.backlog())
                self.healthy = True
                return True
            except (OperationalError, InterfaceError):
                if self.healthy:
                    logger.warning("database unreachable, finals wait in the outbox path=%s", self.path)
                self.healthy = False
                connection.close()
                if self.stopping:
                    return False
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            except Exception as error:  # noqa: BLE001 - anything but an outage will not pass on retry
                logger.error(
                    "outbox operation dropped kind=%s session_id=%s error=%s",
                    op.get("kind"),
                    op.get("session_id"),
                    type(error).__name__,
                )
                return True

    def _replay_orphans(self) -> None:
        """Write out the journals of processes that are gone (their lock is free), then remove them."""
        for path in sorted(self.directory.glob("outbox-*.jsonl")):
            if path == self.path:
                continue
            try:
                with open(path, encoding="utf-8") as journal:
                    try:
                        fcntl.flock(journal, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # its process is alive and writing it
                    ops = [json.loads(line) for line in journal if line.endswith("\n")]
                    for op in ops:
                        if not self._write(op):
                            return  # stopping; the journal stays for the next one
                    path.unlink(missing_ok=True)
                if ops:
                    logger.info("replayed an orphaned outbox journal ops=%d path=%s", len(ops), path)
            except (OSError, ValueError):
                logger.exception("could not replay outbox journal path=%s", path)


def get_outbox() -> Outbox:
    directory = Path(settings.ASR_OUTBOX_DIR)

    def build() -> Outbox:
        return Outbox(directory, fsync=settings.ASR_OUTBOX_FSYNC)

    return process_state.get(("gateway.outbox", str(directory)), build, close=Outbox.close)
