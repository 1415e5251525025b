"""CloudEvents' HTTP binary mode, the part every sender shares: the data's media type as
Content-Type and each attribute as a `ce-` header, percent-encoded as the binding asks.

It imports nothing of govfn, so the outbox sender (`govfn.chronicle.sink`) and the reply
encoder (`govfn.cloudevents.encode`) both use it without the Chronicle depending on the
web side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_HEADER_UNSAFE = re.compile(r'[^\x21-\x7e]|["%]')  # what a header value may not hold raw


def encode_header_value(value: str) -> str:
    """Percent-encode (UTF-8) what the CloudEvents HTTP binding says may not appear raw."""
    if not _HEADER_UNSAFE.search(value):
        return value
    return _HEADER_UNSAFE.sub(_percent_encoded, value)


def _percent_encoded(match: re.Match[str]) -> str:
    return "".join(f"%{octet:02X}" for octet in match.group().encode("utf-8"))


def is_header_safe(value: str) -> bool:
    """Whether `value` goes out as it is: printable ASCII but space, `"` and `%`."""
    return (
        value.isascii()
        and value.isprintable()
        and " " not in value
        and '"' not in value
        and "%" not in value
    )


def binary_headers(attributes: Mapping[str, str], content_type: str) -> list[tuple[str, str]]:
    """Binary mode's head: the data's media type, then one `ce-` header per attribute."""
    headers = [("Content-Type", content_type)]
    if is_header_safe("".join(attributes.values())):  # the usual case: nothing to encode
        headers += [(f"ce-{name}", value) for name, value in attributes.items()]
    else:
        headers += [
            (f"ce-{name}", encode_header_value(value)) for name, value in attributes.items()
        ]
    return headers
