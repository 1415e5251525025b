"""The SinkBinding of each Service: K_SINK, where the Chronicle's records leave the pod.

Rendering (subject, sink, names), the vendored SinkBinding CRD made strict, each admission
rule of the SinkBinding webhook that the schema misses, and `--chronicle-sink` from the
command line and the config file.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from govfn_manifest_schemas import crd, schema_errors

from conftest import MakePlugin
from govfn.cli.group import cli
from govfn.manifest import ManifestError, ManifestOptions, render_all, validate_object
from govfn.manifest.names import sink_binding_name
from govfn.names import DNS1123_LABEL
from govfn.registry import FunctionRegistry

Obj = dict[str, Any]
IMAGE = ["--image", "registry.example/govfn:1.0.0", "--functions", "govfn.functions"]


def kinds(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def run(*args: str, cwd: Path | None = None) -> Result:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, ["manifests", *args], catch_exceptions=False)
    finally:
        os.chdir(old)


def test_one_binding_per_service_to_the_triggers_broker(
    builtins: FunctionRegistry, make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    plugins = [*builtins.all(), make_plugin("z" * 63)]
    objects = render_all(plugins, replace(options, broker="events"))
    services, bindings = kinds(objects, "Service"), kinds(objects, "SinkBinding")
    assert len(services) == len(bindings) == 3
    for service, binding in zip(services, bindings, strict=True):
        name = service["metadata"]["name"]
        assert binding["apiVersion"] == "sources.knative.dev/v1"
        assert binding["metadata"]["name"] == sink_binding_name(name)
        assert binding["metadata"]["namespace"] == "functions"
        assert binding["spec"]["subject"] == {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": name,
            "namespace": "functions",
        }
        assert binding["spec"]["sink"] == {
            "ref": {
                "apiVersion": "eventing.knative.dev/v1",
                "kind": "Broker",
                "name": "events",
                "namespace": "functions",
            }
        }
        labels = binding["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "govfn"  # what --prune selects
        assert labels["app.kubernetes.io/part-of"] == "govfn"
        assert labels["app.kubernetes.io/component"] == "chronicle-sink"
        assert (
            labels["app.kubernetes.io/name"]
            == service["metadata"]["labels"]["app.kubernetes.io/name"]
        )
        assert schema_errors(binding) == []
    triggers = kinds(objects, "Trigger")
    assert {t["spec"]["broker"] for t in triggers} == {"events"}


def test_binding_without_a_namespace_names_none(make_plugin: MakePlugin) -> None:
    binding = kinds(render_all([make_plugin("plain")], ManifestOptions(image="img")), "SinkBinding")
    assert binding[0]["spec"] == {
        "subject": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "plain"},
        "sink": {
            "ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}
        },
    }
    assert "namespace" not in binding[0]["metadata"]


def test_url_sink_and_none(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    plugin = make_plugin("records")
    url = render_all([plugin], replace(options, chronicle_sink="https://records.example/in"))
    assert kinds(url, "SinkBinding")[0]["spec"]["sink"] == {"uri": "https://records.example/in"}
    other = render_all([plugin], replace(options, chronicle_sink="broker:chronicle"))
    assert kinds(other, "SinkBinding")[0]["spec"]["sink"]["ref"]["name"] == "chronicle"
    default = render_all([plugin], options)
    without = render_all([plugin], replace(options, chronicle_sink="none"))
    assert [obj["kind"] for obj in without] == ["Service", "Trigger"]
    assert without == [obj for obj in default if obj["kind"] != "SinkBinding"]


def test_binding_names_are_bounded_deterministic_and_distinct() -> None:
    first, second = "s" * 62 + "a", "s" * 62 + "b"
    names = [sink_binding_name(first), sink_binding_name(second)]
    assert names[0] != names[1]
    assert names == [sink_binding_name(first), sink_binding_name(second)]
    for name in names:
        assert len(name) == 63 and DNS1123_LABEL.match(name)
    assert sink_binding_name("billing") == "billing-chronicle"


def test_strict_schema_catches_a_typo(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    binding = kinds(render_all([make_plugin("typo")], options), "SinkBinding")[0]
    binding["spec"]["sink"]["reff"] = binding["spec"]["sink"].pop("ref")
    assert any("reff" in error for error in schema_errors(binding))
    binding["spec"]["sink"]["ref"] = binding["spec"]["sink"].pop("reff")
    binding["spec"]["subject"]["nmae"] = "x"
    assert any("nmae" in error for error in schema_errors(binding))


S = "spec.subject"
K = "spec.sink"
BINDING_CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    ("subject apiVersion", lambda o: o["spec"]["subject"].pop("apiVersion"), f"{S}.apiVersion"),
    ("subject kind", lambda o: o["spec"]["subject"].update(kind=""), f"{S}.kind: is required"),
    (
        "subject name and selector",
        lambda o: o["spec"]["subject"].update(selector={"matchLabels": {"a": "b"}}),
        f"{S}: exactly one of name and selector",
    ),
    (
        "subject neither name nor selector",
        lambda o: o["spec"]["subject"].pop("name"),
        f"{S}: exactly one of name and selector",
    ),
    (
        "subject in another namespace",
        lambda o: o["spec"]["subject"].update(namespace="other"),
        f"{S}.namespace: 'other' must equal the SinkBinding's namespace 'functions'",
    ),
    (
        "subject namespace without the binding's",
        lambda o: o["metadata"].pop("namespace"),
        f"{S}.namespace: 'functions' is set but metadata.namespace is not",
    ),
    (
        "selector operator",
        lambda o: _select(o, {"matchExpressions": [{"key": "a", "operator": "Like"}]}),
        f"{S}.selector.matchExpressions[0].operator",
    ),
    (
        "selector In without values",
        lambda o: _select(o, {"matchExpressions": [{"key": "a", "operator": "In"}]}),
        f"{S}.selector.matchExpressions[0].values: must be non-empty for In",
    ),
    (
        "selector Exists with values",
        lambda o: _select(
            o, {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}
        ),
        f"{S}.selector.matchExpressions[0].values: must be empty for Exists",
    ),
    (
        "selector label value",
        lambda o: _select(o, {"matchLabels": {"tier": "a b"}}),
        f"{S}.selector.matchLabels[tier]",
    ),
    ("no sink", lambda o: o["spec"].pop("sink"), f"{K}: expected an object"),
    ("empty sink", lambda o: o["spec"].update(sink={}), f"{K}: needs a ref or a uri"),
    (
        "relative uri alone",
        lambda o: o["spec"].update(sink={"uri": "/records"}),
        f"{K}.uri: '/records' must be an absolute URI with a host",
    ),
    (
        "uri without a host",
        lambda o: o["spec"].update(sink={"uri": "https://"}),
        f"{K}.uri: 'https://' must be an absolute URI with a host",
    ),
    (
        "absolute uri beside a ref",
        lambda o: o["spec"]["sink"].update(uri="https://records.example/in"),
        f"{K}.uri: 'https://records.example/in' is absolute",
    ),
    ("ref name", lambda o: o["spec"]["sink"]["ref"].pop("name"), f"{K}.ref.name: is required"),
    ("ref kind", lambda o: o["spec"]["sink"]["ref"].update(kind=""), f"{K}.ref.kind: is required"),
    (
        "ref apiVersion",
        lambda o: o["spec"]["sink"]["ref"].pop("apiVersion"),
        f"{K}.ref.apiVersion: is required",
    ),
    ("metadata name", lambda o: o["metadata"].update(name="Billing"), "metadata.name"),
]


def _select(binding: Obj, selector: Obj) -> None:
    binding["spec"]["subject"].pop("name")
    binding["spec"]["subject"]["selector"] = selector


@pytest.fixture
def binding(make_plugin: MakePlugin, options: ManifestOptions) -> Obj:
    return kinds(render_all([make_plugin("billing")], options), "SinkBinding")[0]


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), BINDING_CASES, ids=[c[0] for c in BINDING_CASES]
)
def test_webhook_refusals(
    binding: Obj, case: str, mutate: Callable[[Obj], object], expected: str
) -> None:
    broken = copy.deepcopy(binding)
    validate_object(broken)  # valid before the change
    mutate(broken)
    assert schema_errors(broken) == [], case  # well-typed: only the webhook refuses it
    with pytest.raises(ManifestError) as caught:
        validate_object(broken)
    assert str(caught.value).startswith("SinkBinding ")
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o["spec"]["subject"].pop("namespace"),  # defaulted to the binding's
        lambda o: o["spec"]["sink"].update(uri="/records"),  # a path on the ref's address
        lambda o: o["spec"].update(sink={"uri": "http://records.example:8080"}),
        lambda o: _select(
            o,
            {
                "matchLabels": {"app.kubernetes.io/name": "billing"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
        ),
    ],
    ids=["subject namespace omitted", "relative uri with a ref", "uri alone", "selector"],
)
def test_webhook_accepts(binding: Obj, mutate: Callable[[Obj], object]) -> None:
    accepted = copy.deepcopy(binding)
    mutate(accepted)
    validate_object(accepted)
    assert schema_errors(accepted) == []


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--chronicle-sink", "ftp://records"], "chronicle_sink: 'ftp://records' is neither"),
        (["--chronicle-sink", "broker:"], "chronicle_sink: 'broker:' is neither"),
        (["--chronicle-sink", "ksvc:records"], "chronicle_sink: 'ksvc:records' is neither"),
        (["--chronicle-sink", "broker:Bad_Name"], "chronicle_sink: Broker name 'Bad_Name'"),
        (
            ["--chronicle-sink", "https://"],
            "SinkBinding 'billing-chronicle': spec.sink.uri: 'https://' must be an absolute URI",
        ),
        (["--env", "K_SINK=http://x"], "env[K_SINK]: is injected by the SinkBinding"),
        (["--env", "K_CE_OVERRIDES={}"], "env[K_CE_OVERRIDES]: is injected by the SinkBinding"),
    ],
)
def test_cli_refusals_exit_2(flags: list[str], field: str, tmp_path: Path) -> None:
    result = run(*IMAGE, *flags, cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and field in result.output


def test_cli_none_lets_the_user_set_k_sink(tmp_path: Path) -> None:
    result = run(*IMAGE, "--chronicle-sink", "none", "--env", "K_SINK=http://x", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.output))
    assert "SinkBinding" not in {doc["kind"] for doc in documents}
    env = documents[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "K_SINK", "value": "http://x"} in env


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("govfn.yaml", "image: img\nfunctions: [govfn.functions.echo]\nchronicle-sink: {sink}\n"),
        (
            "pyproject.toml",
            '[tool.govfn]\nimage = "img"\nfunctions = ["govfn.functions.echo"]\n'
            'chronicle-sink = "{sink}"\n',
        ),
    ],
)
def test_config_file_sets_the_sink_and_flags_win(tmp_path: Path, filename: str, text: str) -> None:
    (tmp_path / filename).write_text(text.replace("{sink}", "https://records.example/in"))
    from_file = list(yaml.safe_load_all(run(cwd=tmp_path).output))
    assert from_file[-1]["spec"]["sink"] == {"uri": "https://records.example/in"}
    flagged = list(yaml.safe_load_all(run("--chronicle-sink", "none", cwd=tmp_path).output))
    assert [doc["kind"] for doc in flagged] == ["Service", "Trigger"]
    (tmp_path / filename).write_text(text.replace("{sink}", "none"))
    assert [d["kind"] for d in yaml.safe_load_all(run(cwd=tmp_path).output)] == [
        "Service",
        "Trigger",
    ]


def test_records_sent_to_the_triggers_broker_must_not_trigger_their_function(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    auditor = make_plugin("auditor", triggers=("FUNCTION_COMPLETED",))
    with pytest.raises(ManifestError) as caught:
        render_all([auditor], options)
    assert caught.value.field == "functions[auditor].trigger_events"
    assert "'FUNCTION_COMPLETED' is a Chronicle record type" in str(caught.value)
    for fine in (
        replace(options, chronicle_sink="none"),
        replace(options, chronicle_sink="broker:chronicle"),  # another broker
        replace(options, allow_reply_loops=True),
    ):
        assert kinds(render_all([auditor], fine), "Trigger")
    quiet = make_plugin("quiet", triggers=("FUNCTION_INVOKED",))
    type(quiet).chronicle_enabled = False  # records nothing, so triggers nothing of its own
    assert kinds(render_all([quiet], options), "Trigger")


def test_the_k_sink_the_binding_adds_survives_server_side_apply() -> None:
    """The README's claim: container env is a list-map keyed by name in the Service CRD, so
    server-side apply merges entries and govfn's apply leaves the binding's K_SINK alone."""
    versions = crd("serving.knative.dev/v1", "Service")["spec"]["versions"]
    spec = versions[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    pod = spec["properties"]["template"]["properties"]["spec"]
    env = pod["properties"]["containers"]["items"]["properties"]["env"]
    assert env["x-kubernetes-list-type"] == "map"
    assert env["x-kubernetes-list-map-keys"] == ["name"]
