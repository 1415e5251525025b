"""YAML that every YAML reader reads as written: strings a YAML 1.1, 1.2 or Go reader could
take for a boolean, null, number or timestamp are quoted, keys too; the real kubectl and
Helm read every env value, label, annotation and filter value back unchanged."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from govfn_yaml_readers import go_read, go_type, pyyaml_type, readers_of_non_string
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import HERE, REPO
from govfn.cli.group import cli
from govfn.manifest.output import dump_yaml
from govfn.manifest.yaml_scalars import plain_is_ambiguous

CHART = REPO / "charts" / "govfn"
KNOWN = [
    *("y", "Y", "n", "N", "yes", "Yes", "NO", "on", "On", "OFF", "off", "true", "False"),
    *("~", "null", "Null", "", "1e3", "1E3", "0o17", "0x1F", "0b101", "017", "08", "1_000"),
    *("-.5", "+1", ".5", "1.", "-1e-3", ".inf", "-.Inf", ".NaN", "12:30", "190:20:30.15"),
    *("2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-1-2 3:04:05", "<<", "="),
]
PLAIN = ["1.0.0", "100m", "256Mi", "img:1", "PT0.5S", "x1", "0x", "e3", "yes-please", "."]
PROPERTY = settings(
    max_examples=int(os.environ.get("GOVFN_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
NUMBERISH = st.text(alphabet="0123456789+-._:eEoOxXbBaf ~yYnNtT<=", max_size=12)
GRAMMARS = st.one_of(
    st.from_regex(r"[-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?", fullmatch=True),
    st.from_regex(r"[-+]?0[bBoOxX][0-9a-fA-F_]{1,6}", fullmatch=True),
    st.from_regex(r"[-+]?[0-9]{1,3}(:[0-9]{1,2}){1,3}(\.[0-9]*)?", fullmatch=True),
    st.from_regex(
        r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2})?", fullmatch=True
    ),
)
STRINGS = st.one_of(NUMBERISH, GRAMMARS, st.sampled_from(KNOWN), st.text(max_size=12))


def styles(text: str) -> dict[str, str | None]:
    """Each scalar of a YAML text and the style it was written in (None: plain)."""
    return {
        event.value: event.style
        for event in yaml.parse(text)
        if isinstance(event, yaml.ScalarEvent)
    }


@PROPERTY
@given(STRINGS)
def test_a_string_no_reader_would_misread_is_written_plain_else_quoted(text: str) -> None:
    written = dump_yaml([{text: text, "k": [text]}])
    assert yaml.safe_load(written) == {text: text, "k": [text]}
    misreaders = readers_of_non_string(text)
    if misreaders:
        assert plain_is_ambiguous(text), (text, misreaders)
        assert styles(written)[text] in ("'", '"'), (text, misreaders, written)
    elif styles(written)[text] is None:
        assert not plain_is_ambiguous(text)


@pytest.mark.parametrize("text", KNOWN)
def test_known_forms_are_quoted_as_keys_and_values(text: str) -> None:
    assert readers_of_non_string(text), f"no reader misreads {text!r}: the readers are wrong"
    written = dump_yaml([{"env": {text: text}, "labels": [{"name": "x", "value": text}]}])
    assert styles(written)[text] in ("'", '"'), written
    assert yaml.safe_load(written)["env"] == {text: text}


@pytest.mark.parametrize("text", PLAIN)
def test_ordinary_strings_stay_plain(text: str) -> None:
    assert not plain_is_ambiguous(text) and not readers_of_non_string(text)
    assert styles(dump_yaml([{"k": text}]))[text] is None


def test_pyyaml_alone_would_leave_what_go_misreads_plain() -> None:
    """Why PyYAML's own quoting is not enough: these it writes plain, and Go reads them as
    something else (so a reader-blind test would pass on the old output)."""
    for text in ("y", "n", "1e3", "0o17", "-.5", "1e+3"):
        assert pyyaml_type(text) == "str"
        assert go_type(text) != "str", text
        assert styles(yaml.safe_dump({"k": text}))[text] is None


# --- the real kubectl and Helm ---------------------------------------------------------


def _corpus(seed: int, count: int) -> list[str]:
    """Strings near the number grammars, with a fixed seed (one kubectl run reads them all)."""
    rng = random.Random(seed)
    alphabet = "0123456789+-._:eEoOxXb"
    drawn = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7))) for _ in range(count)}
    return sorted(drawn)


LABEL_SAFE = [
    t
    for t in KNOWN
    if t and t[0].isalnum() and t[-1].isalnum() and ":" not in t and " " not in t and len(t) <= 63
]
ATTRIBUTE_SAFE = [t for t in KNOWN if t.isalpha() and t.islower()]
ENV_NAME_SAFE = [
    t for t in KNOWN if t and not t[0].isdigit() and all(c.isalnum() or c in "-._" for c in t)
]


def _cli_options() -> tuple[list[str], dict[str, str]]:
    """govfn manifests options that put every known form (and a corpus) into env values and
    names, label keys and values, annotation keys and values, filter names and values."""
    env = {f"V{i}": text for i, text in enumerate(KNOWN + _corpus(25, 300))}
    env.update({name: "x" for name in ENV_NAME_SAFE})
    args = ["--image", "registry.example/govfn:1"]
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    for i, text in enumerate(LABEL_SAFE):
        args += ["--label", f"l{i}={text}", "--label", f"{text}=v"]
        args += ["--annotation", f"{text}=v{i}"]
    for i, text in enumerate(KNOWN):
        args += ["--annotation", f"a.example/v{i}={text}"]
    for i, text in enumerate(KNOWN):
        args += ["--filter", f"f{i}={text}"]
    for text in ATTRIBUTE_SAFE:
        args += ["--filter", f"{text}=x"]
    return args, env


def _manifests(*args: str) -> str:
    result = CliRunner().invoke(
        cli, ["manifests", "--functions", "govfn.functions", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def _by_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


def test_kubectl_reads_every_value_back(helm: Path, tmp_path: Path) -> None:
    kubectl = helm.parent / "kubectl"
    args, env = _cli_options()
    text = _manifests(*args)
    ours = [doc for doc in yaml.safe_load_all(text) if doc]
    read = go_read(kubectl, text, tmp_path)
    assert _by_name(read) == _by_name(ours)  # every value, key and type, as written
    service = next(obj for obj in read if obj["kind"] == "Service")
    container = service["spec"]["template"]["spec"]["containers"][0]
    values = {entry["name"]: entry["value"] for entry in container["env"]}
    assert all(values[name] == value for name, value in env.items())
    assert values["V0"] == "y" and values[f"V{KNOWN.index('1e3')}"] == "1e3"
    trigger = next(obj for obj in read if obj["kind"] == "Trigger")
    assert trigger["spec"]["filter"]["attributes"]["on"] == "x"


def test_kubectl_misreads_what_pyyaml_alone_writes(helm: Path, tmp_path: Path) -> None:
    """The reader is sharp: PyYAML's own quoting gives kubectl a boolean and a number."""
    kubectl = helm.parent / "kubectl"
    objects = yaml.safe_load_all(_manifests("--image", "img:1", "--env", "A=y", "--env", "B=1e3"))
    read = go_read(kubectl, yaml.safe_dump(next(objects), sort_keys=False), tmp_path)[0]
    env = {e["name"]: e["value"] for e in read["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["A"] is True and env["B"] == 1000


def test_helm_renders_every_value_back(helm: Path, tmp_path: Path) -> None:
    kubectl = helm.parent / "kubectl"
    args, _ = _cli_options()
    values = tmp_path / "values.yaml"
    values.write_text(_manifests(*args, "--format", "helm-values"))
    lint = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "-f", str(values)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = subprocess.run(
        [str(helm), "template", "govfn", str(CHART), "-f", str(values)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE,
    )
    assert rendered.returncode == 0, rendered.stderr
    from_helm = go_read(kubectl, rendered.stdout, tmp_path)
    from_govfn = [doc for doc in yaml.safe_load_all(_manifests(*args)) if doc]
    assert _by_name(from_helm) == _by_name(from_govfn)
