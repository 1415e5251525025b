"""Getting each checkpoint a serving process signs cosigned by its witnesses, in the
background: one thread per witness, so a witness that is down or slow delays no other
witness, no signing and no request; it is retried (1 s, doubling to 60 s) with the newest
checkpoint of each log, which supersedes the older ones.

Nothing here runs on the serving event loop, and nothing holds the ledger's write lock
while it builds a consistency proof or talks to a witness: the proof is read like any
other, and the lock is taken only to store the note with the cosignatures gathered so
far (`store_signed_checkpoint`), which keeps it beside the log, queues it for the sink,
and makes it what `checkpoint`, `tiles --out` and tlog-proof files serve.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

from govfn.chronicle.signing.checkpoint import Checkpoint
from govfn.chronicle.signing.witness import CheckpointLog
from govfn.chronicle.signing.witnesses import (
    TIMEOUT_S,
    Witness,
    WitnessError,
    cosign,
    with_cosignatures,
)
from govfn.chronicle.store import LedgerError

log = logging.getLogger("govfn.chronicle.signing.witnesses")

FIRST_RETRY_S = 1.0
LAST_RETRY_S = 60.0
_STORE_TRIES = 5


class _Job(NamedTuple):
    log: CheckpointLog
    checkpoint: Checkpoint
    note: str


class Cosigning:
    """Submits signed checkpoints to `witnesses` and stores the cosigned notes."""

    def __init__(
        self,
        witnesses: Sequence[Witness],
        *,
        timeout_s: float = TIMEOUT_S,
        first_retry_s: float = FIRST_RETRY_S,
    ) -> None:
        self.witnesses = list(witnesses)
        self.timeout_s = timeout_s
        self.first_retry_s = first_retry_s
        self.cosigned = 0  # notes stored with a new cosignature
        self.failures = 0  # submissions that failed (each retried)
        self._lock = threading.Lock()
        self._lines: dict[tuple[str | None, int], list[str]] = {}  # (log, size) -> cosignatures
        self._workers: list[_Worker] = []
        self._pid = 0

    def submit(self, name: str | None, chronicle_log: CheckpointLog, note: str) -> None:
        """Queue a checkpoint note just signed (`publisher.CheckpointPublisher`'s hook)."""
        checkpoint = Checkpoint.parse(note.split("\n\n")[0] + "\n")
        self._start()
        for worker in self._workers:
            worker.offer(name, _Job(chronicle_log, checkpoint, note))

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop()

    def _start(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # threads do not survive a fork
                self._workers = [_Worker(self, w) for w in self.witnesses]
                self._pid = os.getpid()

    def _store(self, name: str | None, job: _Job, lines: list[str]) -> None:
        """Store the note with every cosignature gathered for it so far."""
        with self._lock:
            gathered = self._lines.setdefault((name, job.checkpoint.tree_size), [])
            gathered.extend(line for line in lines if line not in gathered)
            for key in [k for k in self._lines if k[0] == name and k[1] < job.checkpoint.tree_size]:
                del self._lines[key]
            note = with_cosignatures(job.note, gathered)
        stored = _stored(job, note)
        if stored:
            with self._lock:
                self.cosigned += 1


def _stored(job: _Job, note: str) -> bool:
    """Store the note, trying again for a moment while another connection holds SQLite's
    write lock (a WAL restart, say: the ledger's own transactions do not wait for it)."""
    for attempt in range(_STORE_TRIES):
        try:
            return job.log.store_signed_checkpoint(
                job.checkpoint.tree_size, job.checkpoint.root, note
            )
        except LedgerError:
            if attempt == _STORE_TRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    return False


class _Worker:
    """One witness's thread: the newest pending checkpoint of each log, and the size the
    witness last cosigned for each."""

    def __init__(self, owner: Cosigning, witness: Witness) -> None:
        self.owner = owner
        self.witness = witness
        self._pending: dict[str | None, _Job] = {}
        self._sizes: dict[str | None, int] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"govfn-witness-{witness.name}", daemon=True
        )
        self._thread.start()

    def offer(self, name: str | None, job: _Job) -> None:
        with self._lock:
            pending = self._pending.get(name)
            if pending is None or pending.checkpoint.tree_size <= job.checkpoint.tree_size:
                self._pending[name] = job
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=self.owner.timeout_s + 1)

    def _run(self) -> None:
        delay: float | None = None  # None: wait for work
        while not self._stopped.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopped.is_set():
                return
            with self._lock:
                jobs = list(self._pending.items())
            failed = False
            for name, job in jobs:
                failed |= not self._submit(name, job)
            if not failed:
                delay = None
            else:
                delay = min(LAST_RETRY_S, 2 * delay if delay else self.owner.first_retry_s)

    def _submit(self, name: str | None, job: _Job) -> bool:
        try:
            lines, size = cosign(
                self.witness,
                job.log,
                job.note,
                self._sizes.get(name, 0),
                timeout_s=self.owner.timeout_s,
            )
            self._sizes[name] = size
            self.owner._store(name, job, lines)
        except Exception as exc:  # a witness's trouble must not end the thread
            with self.owner._lock:
                self.owner.failures += 1
            level = logging.WARNING if isinstance(exc, WitnessError) else logging.ERROR
            log.log(level, "checkpoint %d not cosigned: %s", job.checkpoint.tree_size, exc)
            return False
        with self._lock:
            if self._pending.get(name) is job:
                del self._pending[name]
        return True
