"""A witness written from c2sp.org/tlog-witness and c2sp.org/tlog-cosignature alone (it
imports nothing of govfn): an HTTP server on loopback answering `POST /add-checkpoint`.

It trusts one log verifier key per origin (checked with `spec_note`), keeps the latest
cosigned (size, root) per origin, answers 409 `text/x.tlog.size` when the request's old
size is not its own, checks the RFC 6962 consistency proof (RFC 9162 section 2.1.4.2),
and cosigns with Ed25519 cosignature/v1. `delay_s` makes it slow, `extra_lines` adds
lines to each answer (a bad cosignature, another witness's), `down()` refuses requests
with 503.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from support.spec_note import verify_note

EMPTY = hashlib.sha256(b"").digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent(
    first: int, second: int, first_hash: bytes, second_hash: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2, step by step (0 < first < second)."""
    if first & (first - 1) == 0:
        proof = [first_hash, *proof]
    if not proof:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_hash and sr == second_hash


class SpecWitness:
    def __init__(self, name: str, logs: dict[str, str], *, delay_s: float = 0.0) -> None:
        self.name = name
        self.logs = dict(logs)  # origin -> the log's signed-note verifier key
        self.delay_s = delay_s
        self.extra_lines = ""
        self.refusing = False
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.latest: dict[str, tuple[int, bytes]] = {}
        self.answers: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def key_id(self, kind: int) -> int:
        digest = hashlib.sha256(self.name.encode() + b"\n" + bytes([kind]) + self.public).digest()
        return int.from_bytes(digest[:4], "big")

    @property
    def vkey(self) -> str:
        """The tlog-cosignature verifier key (type 0x04)."""
        material = base64.b64encode(b"\x04" + self.public).decode()
        return f"{self.name}+{self.key_id(0x04):08x}+{material}"

    @property
    def note_vkey(self) -> str:
        """The same key in the Ed25519 signed-note form (type 0x01)."""
        material = base64.b64encode(b"\x01" + self.public).decode()
        return f"{self.name}+{self.key_id(0x01):08x}+{material}"

    def cosignature(self, text: bytes, timestamp: int) -> str:
        message = b"cosignature/v1\ntime %d\n" % timestamp + text
        blob = struct.pack(">IQ", self.key_id(0x04), timestamp) + self.key.sign(message)
        return f"\u2014 {self.name} {base64.b64encode(blob).decode()}\n"

    def start(self, port: int = 0) -> SpecWitness:
        witness = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, kind, answer = witness.add_checkpoint(self.path, body)
                witness.answers.append(status)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def add_checkpoint(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        text_plain = "text/plain; charset=utf-8"
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.refusing:
            return 503, text_plain, b"down\n"
        if path != "/add-checkpoint":
            return 404, text_plain, b"not found\n"
        head, _, note = body.partition(b"\n\n")
        lines = head.split(b"\n")
        if not lines[0].startswith(b"old "):
            return 400, text_plain, b"no old line\n"
        old = int(lines[0][4:])
        proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
        origin = note.split(b"\n", 1)[0].decode()
        if origin not in self.logs:
            return 404, text_plain, b"unknown origin\n"
        try:
            text = verify_note(note, self.logs[origin]).encode()
        except AssertionError:
            return 403, text_plain, b"no valid log signature\n"
        size, root = int(text.split(b"\n")[1]), base64.b64decode(text.split(b"\n")[2])
        if old > size:
            return 400, text_plain, b"old size above the checkpoint's\n"
        with self._lock:
            known, known_root = self.latest.get(origin, (0, EMPTY))
            if old != known:
                return 409, "text/x.tlog.size", b"%d\n" % known
            if old == 0:
                ok = not proof and (size or root == EMPTY)
            elif old == size:
                ok = not proof and root == known_root
            else:
                ok = consistent(old, size, known_root, root, proof)
            if not ok:
                return 422, text_plain, b"inconsistent\n"
            self.latest[origin] = (size, root)
        answer = self.cosignature(text, int(time.time())) + self.extra_lines
        return 200, text_plain, answer.encode()
