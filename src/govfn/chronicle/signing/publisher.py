"""A serving process's checkpoint publisher: signs the log's tree head on a schedule and
once more when it stops (at SIGTERM), stores the note beside the log and queues it for
the sink (a CloudEvent of type CHRONICLE_CHECKPOINT), so a witness outside the pod holds
it. A head already signed is not signed again, so idle pods and the several workers of
one pod add nothing (Ed25519 signatures are deterministic: two workers signing the same
head produce the same note, stored once; a worker whose head is older than a note
already stored does not store it).

It signs every log its source names (`logs_to_sign()`): the one log of a SQLite file
under `origin`, or on PostgreSQL each log this process writes, under `<origin>/<log id>`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from govfn.chronicle.signing.checkpoint import Checkpoint
from govfn.chronicle.signing.note import Signer
from govfn.chronicle.signing.witness import CheckpointLog, log_origin

log = logging.getLogger("govfn.chronicle.signing.checkpoints")


class SignedLogs(Protocol):
    def logs_to_sign(self) -> Sequence[tuple[str | None, CheckpointLog]]:
        """(name appended to the origin, or None; the log) of each log to sign."""


class CheckpointPublisher:
    def __init__(
        self,
        chronicle_log: SignedLogs,
        signer: Signer,
        origin: str,
        *,
        interval_s: float = 60.0,
        on_published: Callable[[], None] | None = None,
        on_signed: Callable[[str | None, CheckpointLog, str], None] | None = None,
    ) -> None:
        """`on_signed(log name, log, note)` runs, on the signing thread, after each note
        this publisher stored (`cosigning.Cosigning.submit` queues it for witnesses)."""
        if interval_s <= 0:
            raise ValueError("the checkpoint interval must be positive")
        self.log = chronicle_log
        self.signer = signer
        self.origin = origin
        self.interval_s = interval_s
        self.on_published = on_published
        self.on_signed = on_signed
        self.published = 0
        self._signed_size: dict[str | None, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def start(self) -> None:
        """Start signing in the background (again after a fork: threads do not survive it)."""
        if self._pid != os.getpid():
            self._thread, self._pid = None, os.getpid()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="govfn-checkpoints", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the schedule and sign the final head."""
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=10)
        self._publish_logged()

    def publish_once(self) -> str | None:
        """Sign and store the current head of each log unless this process already signed
        it; returns the last note signed (None when nothing was new)."""
        signed = None
        for name, chronicle_log in self.log.logs_to_sign():
            note = self._publish(name, chronicle_log)
            signed = note or signed
        return signed

    def _publish(self, name: str | None, chronicle_log: CheckpointLog) -> str | None:
        size, root = chronicle_log.head()
        if size == self._signed_size.get(name, -1):
            return None
        checkpoint = Checkpoint(log_origin(self.origin, name), size, bytes.fromhex(root))
        note = checkpoint.sign(self.signer)
        stored = chronicle_log.store_signed_checkpoint(size, checkpoint.root, note)
        self._signed_size[name] = size
        if stored:
            self.published += 1
            if self.on_published is not None:
                self.on_published()
            if self.on_signed is not None:
                self.on_signed(name, chronicle_log, note)
        return note

    def _publish_logged(self) -> None:
        try:
            self.publish_once()
        except Exception:  # the schedule must survive a failing ledger
            log.exception("signing a Chronicle checkpoint failed; trying again later")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._publish_logged()
