"""Deterministic Kubernetes object names for functions, their Triggers and SinkBindings.

A name is a DNS-1123 label (at most 63 characters). A name that would be longer is cut
and given a short hash of the full name, so the same function always gets the same name
and two long names that share a prefix still differ. Two objects of one kind that end up
with the same name are an error, never silently merged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from govfn.manifest.errors import ManifestError
from govfn.names import DNS1123_LABEL_MAX

MAX_NAME = DNS1123_LABEL_MAX
HASH_LENGTH = 8
_NOT_LABEL = re.compile(r"[^a-z0-9]+")
_PREFIX = re.compile(r"^([a-z0-9][-a-z0-9]*)?$")


def slug(text: str) -> str:
    """`GSAP_CR_RECEIVED` -> `gsap-cr-received`; `""` when nothing usable is left."""
    return _NOT_LABEL.sub("-", text.lower()).strip("-")


def bounded(name: str, key: str | None = None) -> str:
    """`name` if it fits in 63 characters, else a cut with a hash of `key` (default `name`)."""
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256((key or name).encode("utf-8")).hexdigest()[:HASH_LENGTH]
    head = name[: MAX_NAME - HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"


def service_name(prefix: str, function_id: str) -> str:
    """`prefix` + the function id (itself a DNS-1123 label), cut to 63 if need be."""
    if not _PREFIX.fullmatch(prefix):
        raise ManifestError(
            "name_prefix", f"{prefix!r} must be lower-case letters, digits and '-', not first"
        )
    return bounded(prefix + function_id)


def trigger_name(service: str, event_type: str) -> str:
    """The Trigger of `service` for `event_type`. Event types are case-sensitive and may hold
    any printable character, so the hash is taken over the exact type, not its slug."""
    base = f"{service}-{slug(event_type) or 'event'}"
    return bounded(base, key=f"{service}\x1f{event_type}")


def sink_binding_name(service: str) -> str:
    """The SinkBinding that gives `service` its K_SINK: `<service>-chronicle`, the hash taken
    over the Service name so two long Services never share a binding."""
    return bounded(f"{service}-chronicle", key=f"{service}\x1fchronicle")


def check_unique(kind: str, names: Iterable[tuple[str, str]]) -> None:
    """Refuse two objects of `kind` with one name; `names` holds (name, what-made-it) pairs."""
    seen: dict[str, str] = {}
    for name, origin in names:
        other = seen.setdefault(name, origin)
        if other != origin:
            raise ManifestError(
                "metadata.name",
                f"{kind} name {name!r} is produced by both {other} and {origin}; "
                "rename one function or event type",
            )
