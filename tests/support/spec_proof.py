"""An offline c2sp.org/tlog-proof@v1 verifier written from the spec alone (it imports
nothing of govfn): what a customer runs with the record's bytes, the log's verifier
key and the witnesses' keys. Steps of the spec's "Verifying a tlog proof": the leaf
hash, the log's signature on the checkpoint, k of n witness cosignatures
(c2sp.org/tlog-cosignature, Ed25519 cosignature/v1), then the RFC 9162 section 2.1.3.2
inclusion proof against the checkpoint's root."""

from __future__ import annotations

import base64
import hashlib

from support.spec_note import ed25519_verify, verify_note


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_ok(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def witnesses_cosigning(note: bytes, text: bytes, witness_vkeys: list[str]) -> list[str]:
    """Names of the witnesses (vkeys of type 0x04) with a valid cosignature in the note."""
    names = []
    block = note[len(text) + 1 :].decode()
    for vkey in witness_vkeys:
        name, hex_id, key64 = vkey.split("+", 2)
        material = base64.b64decode(key64)
        assert material[0] == 0x04 and len(material) == 33
        for line in block.splitlines():
            signer, sig64 = line[2:].split(" ")
            blob = base64.b64decode(sig64)
            if signer != name or blob[:4] != bytes.fromhex(hex_id) or len(blob) != 76:
                continue
            timestamp = int.from_bytes(blob[4:12], "big")
            message = b"cosignature/v1\ntime %d\n" % timestamp + text
            if ed25519_verify(material[1:], message, blob[12:]):
                names.append(name)
                break
    return names


def verify_tlog_proof(
    proof: bytes, entry: bytes, log_vkey: str, witness_vkeys: list[str], quorum: int
) -> int:
    """The entry's index if the proof holds; AssertionError saying which step failed."""
    head, _, note = proof.partition(b"\n\n")
    lines = head.decode().split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1", "not a tlog-proof"
    rest = lines[1:]
    if rest[0].startswith("extra "):
        rest = rest[1:]
    assert rest[0].startswith("index "), "no index line"
    index = int(rest[0][len("index ") :])
    path = [base64.b64decode(line, validate=True) for line in rest[1:]]
    leaf = hashlib.sha256(b"\x00" + entry).digest()  # step 1
    text = verify_note(note, log_vkey).encode()  # step 2
    cosigned = witnesses_cosigning(note, text, witness_vkeys)  # step 3
    assert len(cosigned) >= quorum, f"{len(cosigned)} witness cosignatures, {quorum} needed"
    _, size, root64 = text.decode().split("\n")[:3]  # step 4
    assert inclusion_ok(index, int(size), leaf, path, base64.b64decode(root64)), "bad proof"
    return index
