"""Container image references as both parsers on the way to a running pod take them.

Knative Serving's webhook parses `image` with go-containerregistry
(`name.ParseReference(image, name.WeakValidation)`); the kubelet's runtime with
distribution/reference. `image_problem` refuses what either refuses:

    reference  := name [":" tag] ["@" digest]
    name       := [registry "/"] component ("/" component)*      at most 255 characters
    registry   := host [":" port]    the first part, when it holds a "." or a ":" (or is
                                     localhost); host: DNS labels joined by ".", or [IPv6]
    component  := [a-z0-9]+ (("." | "_" | "__" | "-"+) [a-z0-9]+)*    lower case only
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := "sha256:" 64 lower-case hex digits    (go-containerregistry takes no
                                     other algorithm; distribution's sha384/sha512 it refuses)
"""

from __future__ import annotations

import re

__all__ = ["image_problem"]

_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY = re.compile(rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*")
_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
NAME_MAX = 255


def image_problem(image: str) -> str | None:
    """Why `image` is not a reference Knative and the container runtime both parse (None: it is)."""
    if image.startswith(("http://", "https://")):
        return "an image reference has no URL scheme"
    rest, _, digest = image.partition("@")
    if digest:
        problem = _digest_problem(digest)
        if problem:
            return problem
    elif image.endswith("@"):
        return "the digest after '@' is empty"
    name, tag = rest, None
    last = rest.rsplit(":", 1)
    if len(last) == 2 and "/" not in last[1]:
        name, tag = last
    if tag is not None and not _TAG.fullmatch(tag):
        return (
            f"tag {tag!r} must be letters, digits, '_', '.' or '-', not starting with '.' "
            "or '-', at most 128 characters"
        )
    if not name:
        return "the repository name is empty"
    if len(name) > NAME_MAX:
        return f"the name is {len(name)} characters long, more than {NAME_MAX}"
    first, slash, path = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _REGISTRY.fullmatch(first):
            return f"registry {first!r} is not a host name or [IPv6] address with an optional port"
    else:
        path = name
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            return (
                f"repository path component {component!r} must be lower-case letters and "
                "digits, separated by '.', '_', '__' or '-' (a registry host needs a '.' or "
                "':', as in registry.example:5000/...)"
            )
    return None


def _digest_problem(digest: str) -> str | None:
    algorithm, colon, hex_digits = digest.partition(":")
    if not colon or not _ALGORITHM.fullmatch(algorithm) or "@" in hex_digits:
        return f"digest {digest!r} must be ALGORITHM:HEX, such as sha256:<64 hex digits>"
    if algorithm != "sha256":
        known = f" ({_HEX_LENGTHS[algorithm]} hex digits)" if algorithm in _HEX_LENGTHS else ""
        return f"digest algorithm {algorithm!r}{known}: Knative's image parser takes only sha256"
    if len(hex_digits) != 64 or not re.fullmatch(r"[0-9a-f]+", hex_digits):
        return f"a sha256 digest has 64 lower-case hex digits, got {hex_digits!r}"
    return None
