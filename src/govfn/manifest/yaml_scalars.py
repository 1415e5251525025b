"""Which strings must be quoted so that every YAML reader reads them back as strings.

PyYAML quotes a string only when PyYAML itself would read the plain form as something
else. Go's YAML (gopkg.in/yaml.v2 inside sigs.k8s.io/yaml, which kubectl, Helm, client-go
and Knative use) resolves more: `1e3` and `-.5` are floats there (its float pattern takes an
exponent without a sign), `0o17` and `1_000` are ints (`strconv.ParseInt(s, 0, 64)` after
dropping the underscores), and `y`, `n`, `on`, `off` are booleans. A YAML 1.2 core-schema
reader adds `0o17` too. `plain_is_ambiguous` is the union of those resolvers, widened where
that costs nothing but a pair of quotes:

- the booleans and nulls of YAML 1.1 and 1.2 in any letter case (`y`, `No`, `oN`, `~`, `NULL`,
  the empty string), the merge key `<<` and the value key `=` of YAML 1.1;
- numbers: with the underscores dropped, an optional sign and then a binary, octal (`0o`
  or a leading 0), hexadecimal, decimal or sexagesimal (`12:30`) integer, or a float with
  digits on either side of an optional point and an exponent with or without its sign;
  `.inf`, `-.Inf`, `.NaN` in any case;
- timestamps: anything that starts like a date (`2001-12-14`, `2001-1-2T...`);
- anything YAML's own syntax would take apart when written plain (an anchor `&`, an alias
  `*`, a tag `!`, a flow collection, `key: value`, a comment, edges of white space): PyYAML
  reads such a text, and when it does not read back the same string, it is quoted.

Keys go through the same test: Go's decoder turns the key `on` into `true` and `1e3`
into `1000` before kubectl sees them.
"""

from __future__ import annotations

import re

import yaml

__all__ = ["plain_is_ambiguous"]

_WORDS = frozenset(
    {"", "~", "null", "y", "yes", "n", "no", "on", "off", "true", "false", "<<", "="}
    | {".inf", "+.inf", "-.inf", ".nan", "+.nan", "-.nan"}
)
_NUMBER = re.compile(
    r"""[-+]?(?:
        0b[01]+ | 0o[0-7]+ | 0x[0-9a-f]+                      # based integers
      | [0-9]+(?::[0-9]+)*(?:\.[0-9]*)?(?:e[-+]?[0-9]+)?      # decimal, sexagesimal, float
      | \.[0-9]+(?:e[-+]?[0-9]+)?                             # .5, -.5e3
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")
_SYNTAX = frozenset(":#&*!|>'\"%@`{}[],?-\n\r\t ")  # characters YAML's syntax may claim


def plain_is_ambiguous(text: str) -> bool:
    """Whether some YAML 1.1 or 1.2 reader could take `text`, written plain, for a
    boolean, null, number or timestamp (then it must be quoted)."""
    if text.lower() in _WORDS:
        return True
    if "_" in text and _NUMBER.fullmatch(text.replace("_", "0")) is not None:
        return True  # YAML 1.1 takes `0b_`, `1_` as numbers: underscores may stand for digits
    if _NUMBER.fullmatch(text.replace("_", "")) is not None:
        return True
    if _DATE.match(text) is not None:
        return True
    return not _SYNTAX.isdisjoint(text) and not _reads_back(text)


def _reads_back(text: str) -> bool:
    try:
        return bool(yaml.safe_load(text) == text)
    except (yaml.YAMLError, ValueError):  # a number PyYAML resolves but cannot convert
        return False
