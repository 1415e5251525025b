"""What YAML readers make of a plain (unquoted) scalar, written apart from govfn's own rule
(`govfn.manifest.yaml_scalars`) so that the tests check it against independent readers:

- `pyyaml_type`: PyYAML's resolver (YAML 1.1 less `y`/`n`), what `yaml.safe_load` does;
- `yaml11_type`: the YAML 1.1 type repository (yaml.org/type), which adds `y`, `Y`, `n`, `N`;
- `yaml12_type`: the YAML 1.2.2 core schema (spec §10.3.2);
- `go_type`: Go's gopkg.in/yaml.v2 `resolve()` (sigs.k8s.io/yaml: kubectl, Helm), transcribed:
  the resolve map, `strconv.ParseInt/ParseUint(s, 0, 64)` after dropping `_`, its float
  pattern, its `0b`/`-0b` forms and `parseTimestamp`'s formats.

Each returns "str" or the type the reader would give the plain scalar.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

_PYYAML = yaml.resolver.Resolver()


def pyyaml_type(text: str) -> str:
    tag = _PYYAML.resolve(yaml.ScalarNode, text, (True, False))
    return str(tag).rsplit(":", 1)[-1]


def yaml11_type(text: str) -> str:
    if text in ("y", "Y", "n", "N"):
        return "bool"
    return pyyaml_type(text)


_CORE = [
    ("null", re.compile(r"null|Null|NULL|~|")),
    ("bool", re.compile(r"true|True|TRUE|false|False|FALSE")),
    ("int", re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")),
    (
        "float",
        re.compile(
            r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
        ),
    ),
]


def yaml12_type(text: str) -> str:
    for name, pattern in _CORE:
        if pattern.fullmatch(text):
            return name
    return "str"


_SPECIALS = [sign + "." + word for sign in ("", "+", "-") for word in ("inf", "Inf", "INF")]
_GO_MAP = {
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"], "bool"),
    **dict.fromkeys(["true", "True", "TRUE"], "bool"),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "off", "Off", "OFF"], "bool"),
    **dict.fromkeys(["false", "False", "FALSE"], "bool"),
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], "null"),
    **dict.fromkeys([*_SPECIALS, ".nan", ".NaN", ".NAN"], "float"),
    "<<": "merge",
}
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(([Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?(Z|[-+][0-9]{2}:[0-9]{2}))"
    r"|( [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?))?"
)
_GO_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _go_parse_int(text: str) -> bool:
    """strconv.ParseInt(text, 0, 64) or ParseUint succeeds (range ignored: the number
    forms are what matters here)."""
    body = text[1:] if text[:1] in "+-" else text
    if not body:
        return False
    base = 10
    if body[0] == "0":
        prefix = body[1:2].lower()
        if len(body) >= 3 and prefix in ("b", "o", "x"):
            base, body = {"b": 2, "o": 8, "x": 16}[prefix], body[2:]
        else:
            base, body = 8, body[1:]
            if not body:
                return True  # "0"
    return bool(body) and all(char in _GO_DIGITS[base] for char in body)


def go_type(text: str) -> str:
    if text in _GO_MAP:
        return _GO_MAP[text]
    if not text or text[0] not in "+-0123456789.":
        return "str"
    if _GO_TIMESTAMP.fullmatch(text):
        return "timestamp"
    plain = text.replace("_", "")
    if _go_parse_int(plain):
        return "int"
    if _GO_FLOAT.fullmatch(plain):
        return "float"
    digits = plain[2:] if plain.startswith("0b") else plain[3:] if plain.startswith("-0b") else ""
    if digits and set(digits) <= set("01"):
        return "int"
    return "str"


READERS = {"pyyaml": pyyaml_type, "yaml-1.1": yaml11_type, "yaml-1.2": yaml12_type, "go": go_type}


def readers_of_non_string(text: str) -> list[str]:
    """The readers that would not read `text`, written plain, as a string."""
    return [name for name, reader in READERS.items() if reader(text) != "str"]


def go_read(kubectl: Path, text: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The objects Go's YAML decoder makes of `text`, as kubectl reads a manifest: `kubectl
    annotate --local -o json` decodes every document and prints it, with no cluster (`kubectl
    create --dry-run=client` needs one to map the kinds). The probe annotation is dropped."""
    result = subprocess.run(
        [str(kubectl), "annotate", "--local", "-f", "-", "-o", "json", f"{PROBE}=1"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        env={"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    decoder, found, at = json.JSONDecoder(), [], 0
    output = result.stdout
    while output[at:].strip():
        at += len(output[at:]) - len(output[at:].lstrip())
        obj, at = decoder.raw_decode(output, at)
        annotations = obj["metadata"]["annotations"]
        assert annotations.pop(PROBE) == "1"
        found.append(obj)
    return found


PROBE = "govfn.test/read-by-kubectl"
