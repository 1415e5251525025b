"""C2SP signed notes: govfn's notes and keys checked by an implementation written from
the spec (support/spec_note.py), against the spec's own example and Go's sumdb/note vectors."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govfn.chronicle.signing import note

from support import spec_note

# From c2sp.org/signed-note, "Example".
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYj"
    "OBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# From golang.org/x/mod/sumdb/note's package documentation.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1F"
    "FYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs")),
    min_size=1,
    max_size=30,
).filter(lambda name: "+" not in name and not any(c.isspace() for c in name))


def test_spec_example_verifies_in_both_implementations() -> None:
    assert spec_note.verify_note(SPEC_NOTE.encode(), SPEC_VKEY) == "This is an example message.\n"
    opened = note.open_note(SPEC_NOTE, note.Verifier.from_key(SPEC_VKEY))
    assert opened.text == "This is an example message.\n"
    assert opened.signatures[0].key_id == 0x530D903A


def test_go_signer_key_signs_gos_documented_note_byte_for_byte() -> None:
    signer = note.Signer.from_key(GO_SKEY)
    assert signer.verifier().encode() == GO_VKEY
    assert note.sign(GO_TEXT, signer) == GO_NOTE  # Ed25519 signatures are deterministic
    assert spec_note.verify_note(GO_NOTE.encode(), GO_VKEY) == GO_TEXT


def test_go_format_keys_round_trip() -> None:
    assert note.Signer.from_key(GO_SKEY).encode() == GO_SKEY
    assert note.Verifier.from_key(GO_VKEY).encode() == GO_VKEY
    signer = note.Signer.generate("govfn.example/billing")
    skey, vkey = signer.encode(), signer.verifier().encode()
    assert re.fullmatch(
        r"PRIVATE\+KEY\+govfn\.example/billing\+[0-9a-f]{8}\+[A-Za-z0-9+/=]{44}", skey
    )
    assert re.fullmatch(r"govfn\.example/billing\+[0-9a-f]{8}\+[A-Za-z0-9+/=]{44}", vkey)
    assert note.Signer.from_key(skey) == signer
    name, key_id, public = spec_note.parse_vkey(vkey)  # the spec's key-hash rule holds
    assert (name, key_id, public) == ("govfn.example/billing", signer.key_id, signer.public_key())
    seed = base64.b64decode(skey.split("+", 4)[4])
    assert seed[0] == 0x01 and seed[1:] == signer.seed and skey.split("+")[3] == vkey.split("+")[1]


@settings(max_examples=25, deadline=None)
@given(name=NAMES, text=st.text(st.characters(codec="utf-8", min_codepoint=0x20), max_size=200))
def test_any_signed_note_verifies_independently(name: str, text: str) -> None:
    signer = note.Signer.generate(name)
    body = text.replace("\r", "") + "\n"
    signed = note.sign(body, signer)
    vkey = signer.verifier().encode()
    assert spec_note.verify_note(signed.encode(), vkey) == body
    assert spec_note.key_id(name, signer.public_key()) == signer.key_id
    assert note.open_note(signed, note.Verifier.from_key(vkey)).text == body


def test_altered_text_and_foreign_keys_are_refused() -> None:
    signer = note.Signer.from_key(GO_SKEY)
    verifier = signer.verifier()
    with pytest.raises(note.NoteError, match="does not verify"):
        note.open_note(GO_NOTE.replace("problem,", "problem;"), verifier)
    other = note.Signer.generate("PeterNeumann")  # same name, another key: ignored, so unsigned
    with pytest.raises(note.NoteError, match="not signed by PeterNeumann"):
        note.open_note(note.sign(GO_TEXT, other), verifier)
    both = note.sign(GO_TEXT, other, signer)  # unknown signatures are ignored
    assert note.open_note(both, verifier).text == GO_TEXT


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("no signatures\n", "no blank line"),
        ("text\n\n", "no signature line"),
        ("text\n\nnot a signature\n", "malformed signature line"),
        ("text\n\n\u2014 name AAAA\n", "malformed signature line"),
        ("bell\x07\n\n\u2014 name AAAAAAAA\n", "control character"),
        ("text\n\n\u2014 name !!!\n", "not base64"),
    ],
)
def test_malformed_notes_name_the_problem(message: str, problem: str) -> None:
    with pytest.raises(note.NoteError, match=problem):
        note.parse(message)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("PeterNeumann+c74f20a3", "must be"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + b"k" * 32).decode(), "Ed25519"),
        ("PeterNeumann+c74f20a3+not-base64", "not base64"),
        ("PeterNeumann+zz+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
    ],
)
def test_malformed_verifier_keys_name_the_problem(key: str, problem: str) -> None:
    with pytest.raises(note.NoteError, match=problem):
        note.Verifier.from_key(key)


def test_malformed_signer_keys_name_the_problem() -> None:
    with pytest.raises(note.NoteError, match="PRIVATE"):
        note.Signer.from_key(GO_VKEY)
    with pytest.raises(note.NoteError, match="does not match"):
        note.Signer.from_key(GO_SKEY.replace("c74f20a3", "c74f20a4"))
