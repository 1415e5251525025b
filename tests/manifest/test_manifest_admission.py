"""Knative's admission rules before the cluster: each rule refused with the bad value and
accepted with a good one, through `govfn manifests`/`govfn apply` (exit 2 naming the field,
nothing sent) and on rendered objects."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from govfn_manifest_apiserver import ApiServer

from conftest import MakePlugin
from govfn.cli.group import cli
from govfn.manifest import ManifestError, ManifestOptions, render_function, validate_object
from govfn.manifest.durations import go_duration, knative_period
from govfn.manifest.image_ref import image_problem

Obj = dict[str, Any]
POD = "spec.template.spec"
C = f"{POD}.containers[0]"
HEX = "0123456789abcdef" * 4
GOOD_IMAGES = [
    "govfn",
    "ab",
    "govfn:1",
    "registry.example/govfn:1.0.0",
    "Registry.Example/team/govfn",  # a registry host may have capitals, the path not
    "localhost/govfn",
    "localhost:5000/a/b_c__d-e.f:latest",
    "[::1]:5000/govfn:1",
    "10.0.0.1:5000/govfn",
    f"registry.example/govfn@sha256:{HEX}",
    f"registry.example/govfn:1@sha256:{HEX}",
    "govfn:" + "t" * 128,
    "govfn:_underscore.first",
]
BAD_IMAGES = [
    ("UPPER/govfn:1", "'UPPER' must be lower-case"),
    ("registry.example/Govfn:1", "'Govfn' must be lower-case"),
    ("registry.example/govfn@sha256:abc", "64 lower-case hex digits"),
    (f"registry.example/govfn@sha256:{HEX.upper()}", "64 lower-case hex digits"),
    (f"registry.example/govfn@sha256:{HEX}0", "64 lower-case hex digits"),
    (f"registry.example/govfn@sha512:{HEX * 2}", "takes only sha256"),
    ("registry.example/govfn@md5", "ALGORITHM:HEX"),
    (f"registry.example/govfn@sha256:{HEX}@sha256:{HEX}", "ALGORITHM:HEX"),
    ("registry.example/govfn@", "digest after '@' is empty"),
    ("registry.example/govfn :1", "'govfn ' must be lower-case"),
    ("registry.example/govfn:1 ", "tag '1 '"),
    (" govfn", "' govfn'"),
    ("govfn:", "tag ''"),
    ("govfn:-dash", "tag '-dash'"),
    ("govfn:.dot", "tag '.dot'"),
    ("govfn:" + "t" * 129, "at most 128"),
    ("govfn:a/b:c", "registry 'govfn:a'"),
    ("https://registry.example/govfn:1", "no URL scheme"),
    ("reg_istry.example/govfn", "registry 'reg_istry.example'"),
    ("registry.example:port/govfn", "registry 'registry.example:port'"),
    ("registry.example//govfn", "component ''"),
    ("registry.example/govfn/", "component ''"),
    ("registry.example/-govfn", "component '-govfn'"),
    ("registry.example/go..fn", "component 'go..fn'"),
    (":1", "the repository name is empty"),
    ("r.example/" + "a" * 250, "more than 255"),
]


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_image_references_that_parse(image: str) -> None:
    assert image_problem(image) is None


@pytest.mark.parametrize(("image", "reason"), BAD_IMAGES, ids=[b[0][:40] for b in BAD_IMAGES])
def test_image_references_that_do_not(image: str, reason: str) -> None:
    problem = image_problem(image)
    assert problem is not None and reason in problem, problem


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("90s", 90 * 10**9),
        ("2m30s", 150 * 10**9),
        ("1.5h", 5400 * 10**9),
        ("+1h", 3600 * 10**9),
        ("-5s", -5 * 10**9),
        (".5s", 5 * 10**8),
        ("1.s", 10**9),
        ("500ms", 5 * 10**8),
        ("1\u00b5s", 1000),
        ("1h1m1s1ms1us1ns", 3661001001001),
    ],
)
def test_go_durations(text: str, nanoseconds: int) -> None:
    assert go_duration(text) == nanoseconds


@pytest.mark.parametrize(
    "text", ["", "bogus", "5", "1d", "5 s", "s", ".s", "-", "1.5.s", "9999999999h", "1h "]
)
def test_go_duration_refusals(text: str) -> None:
    with pytest.raises(ValueError):
        go_duration(text)


@pytest.mark.parametrize(
    ("text", "tenths"),
    [
        ("PT0.5S", (0, 0, 0, 0, 0, 5)),
        ("PT0.15S", (0, 0, 0, 0, 0, 1)),  # one decimal place kept
        ("PT0.05S", (0, 0, 0, 0, 0, 0)),
        ("PT0.001S", (0, 0, 0, 0, 0, 0)),
        ("PT90S", (0, 0, 0, 0, 10, 300)),
        ("PT3600S", (0, 0, 0, 10, 0, 0)),
        ("P1W", (0, 0, 70, 0, 0, 0)),
        ("P1DT2H", (0, 0, 10, 20, 0, 0)),
        ("P24M", (20, 0, 0, 0, 0, 0)),
        ("P0", (0, 0, 0, 0, 0, 0)),
        ("-PT1S", (0, 0, 0, 0, 0, -10)),
        ("PT1,5S", (0, 0, 0, 0, 0, 15)),
        ("P6553.6Y", (0, 0, 0, 0, 0, 0)),  # 65536 tenths wrap to zero in an int16
    ],
)
def test_knative_periods(text: str, tenths: tuple[int, ...]) -> None:
    assert knative_period(text) == tenths


@pytest.mark.parametrize("text", ["", "PT", "P", "5s", "T1S", "PT1S2", "PT9999999999999999999S"])
def test_knative_period_refusals(text: str) -> None:
    with pytest.raises(ValueError):
        knative_period(text)


# --- the CLI: exit 2 naming the field -------------------------------------------------

IMAGE = ["--image", "registry.example/govfn:1", "--functions", "govfn.functions"]


def run(command: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [command, *args], catch_exceptions=False)


REFUSED_FLAGS = [
    (["--service-account", "Bad_Name"], f"{POD}.serviceAccountName: 'Bad_Name'"),
    (["--service-account=-x"], f"{POD}.serviceAccountName: '-x'"),
    (["--service-account", "a" * 254], f"{POD}.serviceAccountName"),
    (["--service-account", "ok\n"], f"{POD}.serviceAccountName"),
    (["--image", "UPPER/govfn:1"], f"{C}.image: 'UPPER/govfn:1' does not parse"),
    (["--image", "registry.example/govfn@sha256:abc"], f"{C}.image"),
    (["--image", "registry.example/govfn :1"], f"{C}.image"),
    (["--delivery-timeout", "PT0S"], "spec.delivery.timeout: 'PT0S' is zero to Knative"),
    (["--delivery-timeout", "PT0.001S"], "spec.delivery.timeout: 'PT0.001S' is zero"),
    (["--delivery-timeout", "PT0.09S"], "spec.delivery.timeout: 'PT0.09S' is zero"),
    (["--delivery-timeout", "P0D"], "spec.delivery.timeout: 'P0D' is zero"),
    (["--backoff-delay", "PT99999999999999999999S"], "spec.delivery.backoffDelay"),
    (["--retry", str(2**31)], "spec.delivery.retry"),
    (
        ["--annotation", "serving.knative.dev/rollout-duration=bogus"],
        "metadata.annotations[serving.knative.dev/rollout-duration]: 'bogus' is not a Go",
    ),
    (
        ["--annotation", "serving.knative.dev/rollout-duration=1.5s"],
        "'1.5s' is not at second precision",
    ),
    (["--annotation", "serving.knative.dev/rollout-duration=-5s"], "'-5s' must not be negative"),
    (["--annotation", "serving.knative.dev/rolloutDuration=5"], "rolloutDuration]: '5' is not"),
    (["--annotation", "serving.knative.dev/creator=me"], "serving.knative.dev/creator]: is set"),
    (["--annotation", "serving.knative.dev/lastModifier=me"], "lastModifier]: is set by Knative"),
    (["--annotation", "autoscaling.knative.devx/a=1"], "autoscaling annotations are allowed"),
    (["--max-scale", str(2**31)], "max-scale]: '2147483648' must be"),
    (["--min-scale", str(2**31)], "min-scale]: '2147483648' must be"),
    (["--annotation", "knative.dev/dependency=oops"], "knative.dev/dependency]: must be a JSON"),
    (
        ["--annotation", 'knative.dev/dependency={"apiVersion":"v1","name":"x"}'],
        "the reference needs a kind",
    ),
    (
        [
            "--namespace",
            "shop",
            "--annotation",
            'knative.dev/dependency={"apiVersion":"v1","kind":"K","name":"x","namespace":"b"}',
        ],
        "namespace 'b' must be empty or the Trigger's own",
    ),
    (["--annotation", "eventing.knative.dev/injection=on"], "'on' must be enabled or disabled"),
    (
        ["--broker", "events", "--annotation", "eventing.knative.dev/injection=enabled"],
        "injection]: applies only to the broker named default",
    ),
    (["--dead-letter-sink", "https://"], "spec.delivery.deadLetterSink.uri: 'https://' must be"),
]
ACCEPTED_FLAGS = [
    ["--service-account", "functions"],
    ["--service-account", "a.b-c"],
    ["--service-account", "a" * 253],
    ["--image", "localhost:5000/a/b_c:1"],
    ["--image", f"registry.example/govfn@sha256:{HEX}"],
    ["--delivery-timeout", "PT0.1S"],
    ["--delivery-timeout", "PT0.15S"],
    ["--delivery-timeout", "PT5S"],
    ["--backoff-delay", "PT0.2S", "--backoff-policy", "linear"],
    ["--retry", str(2**31 - 1)],
    ["--annotation", "serving.knative.dev/rollout-duration=0"],
    ["--annotation", "serving.knative.dev/rollout-duration=2m30s"],
    ["--annotation", "serving.knative.dev/rollout-duration=1.5m"],
    ["--annotation", "serving.knative.dev/rollout-duration="],  # empty: Knative ignores it
    ["--max-scale", str(2**31 - 1)],
    ["--annotation", 'knative.dev/dependency={"apiVersion":"v1","kind":"K","name":"x"}'],
    ["--annotation", "eventing.knative.dev/injection=enabled"],
    ["--dead-letter-sink", "https://dlq.example/e"],
]


@pytest.mark.parametrize(
    ("flags", "message"), REFUSED_FLAGS, ids=[r[1][:50] for r in REFUSED_FLAGS]
)
def test_manifests_refuses_naming_the_field(flags: list[str], message: str) -> None:
    result = run("manifests", *IMAGE, *flags)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and message in result.output, result.output


@pytest.mark.parametrize("flags", ACCEPTED_FLAGS, ids=[" ".join(f)[:50] for f in ACCEPTED_FLAGS])
def test_manifests_accepts_the_good_value(flags: list[str]) -> None:
    result = run("manifests", *IMAGE, *flags)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "flags",
    [
        ["--service-account", "Bad_Name"],
        ["--image", "UPPER/govfn:1"],
        ["--delivery-timeout", "PT0.001S"],
        ["--annotation", "serving.knative.dev/rollout-duration=bogus"],
    ],
)
def test_apply_refuses_before_connecting(
    apiserver: ApiServer, kubeconfig: Path, flags: list[str]
) -> None:
    result = run("apply", *IMAGE, "--kubeconfig", str(kubeconfig), *flags)
    assert result.exit_code == 2 and result.output.startswith("Error: "), result.output
    assert apiserver.state.requests == []  # not even discovery
    good = run("apply", *IMAGE, "--kubeconfig", str(kubeconfig))
    assert good.exit_code == 0, good.output  # the same server takes the valid objects


# --- rendered objects, one field broken ----------------------------------------------


def _c(obj: Obj) -> Obj:
    container: Obj = obj["spec"]["template"]["spec"]["containers"][0]
    return container


def _pod(obj: Obj) -> Obj:
    pod: Obj = obj["spec"]["template"]["spec"]
    return pod


def _template_annotations(obj: Obj) -> Obj:
    annotations: Obj = obj["spec"]["template"]["metadata"].setdefault("annotations", {})
    return annotations


SERVICE_CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    ("name digit first", lambda o: o["metadata"].update(name="1fn"), "metadata.name: '1fn'"),
    ("reserved container", lambda o: _c(o).update(name="queue-proxy"), f"{C}.name"),
    ("no image", lambda o: _c(o).pop("image"), f"{C}.image: is required"),
    ("volume name", lambda o: _pod(o)["volumes"][1].update(name="Tmp"), "volumes[1].name: 'Tmp'"),
    (
        "duplicate volume",
        lambda o: _pod(o)["volumes"].append({"name": "tmp", "emptyDir": {}}),
        "volumes[2].name: duplicate volume name 'tmp'",
    ),
    (
        "unmounted volume",
        lambda o: _pod(o)["volumes"].append({"name": "spare", "emptyDir": {}}),
        "volumes[2].name: volume 'spare' is not mounted",
    ),
    (
        "medium",
        lambda o: _pod(o)["volumes"][1]["emptyDir"].update(medium="HugePages"),
        "volumes[1].emptyDir.medium",
    ),
    (
        "relative mount",
        lambda o: _c(o)["volumeMounts"][1].update(mountPath="tmp"),
        f"{C}.volumeMounts[1].mountPath: 'tmp' must be an absolute path",
    ),
    (
        "reserved mount",
        lambda o: _c(o)["volumeMounts"][1].update(mountPath="/dev/log/"),
        "'/dev/log' is a reserved path",
    ),
    (
        "same mount path",
        lambda o: _c(o)["volumeMounts"][1].update(mountPath="/var/lib/govfn/"),
        "'/var/lib/govfn/' must be unique",
    ),
    (
        "progress-deadline",
        lambda o: _template_annotations(o).update({"serving.knative.dev/progress-deadline": "1"}),
        "annotations[serving.knative.dev/progress-deadline]: '1' is not a Go duration",
    ),
    (
        "initial-scale int32",
        lambda o: _template_annotations(o).update(
            {"autoscaling.knative.dev/initial-scale": "99999999999"}
        ),
        "initial-scale]: '99999999999' must be",
    ),
    (
        "min-scale sign",
        lambda o: _template_annotations(o).update({"autoscaling.knative.dev/min-scale": "1\n"}),
        "min-scale]",
    ),
]
TRIGGER_CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    (
        "relative subscriber uri",
        lambda o: o["spec"].update(subscriber={"uri": "/events"}),
        "spec.subscriber.uri: '/events' must be an absolute URI with a host",
    ),
    (
        "absolute uri beside a ref",
        lambda o: o["spec"]["subscriber"].update(uri="http://x.example/"),
        "spec.subscriber.uri: 'http://x.example/' is absolute",
    ),
    (
        "dead-letter uri without host",
        lambda o: o["spec"].update(delivery={"deadLetterSink": {"uri": "http:///x"}}),
        "spec.delivery.deadLetterSink.uri",
    ),
    (
        "timeout rounds to zero",
        lambda o: o["spec"].update(delivery={"timeout": "PT0.099S"}),
        "spec.delivery.timeout: 'PT0.099S' is zero",
    ),
    (
        "timeout wraps to zero",
        lambda o: o["spec"].update(delivery={"timeout": "P6553.6Y"}),
        "spec.delivery.timeout: 'P6553.6Y' is zero",
    ),
]


@pytest.fixture
def objects(make_plugin: MakePlugin, options: ManifestOptions) -> list[Obj]:
    return render_function(make_plugin("billing"), options)


def _refused(obj: Obj, mutate: Callable[[Obj], object], expected: str) -> None:
    broken = copy.deepcopy(obj)
    validate_object(broken)  # valid before the change
    mutate(broken)
    with pytest.raises(ManifestError) as caught:
        validate_object(broken)
    assert expected in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), SERVICE_CASES, ids=[c[0] for c in SERVICE_CASES]
)
def test_service_refusals(
    objects: list[Obj], case: str, mutate: Callable[[Obj], object], expected: str
) -> None:
    _refused(objects[0], mutate, expected)


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), TRIGGER_CASES, ids=[c[0] for c in TRIGGER_CASES]
)
def test_trigger_refusals(
    objects: list[Obj], case: str, mutate: Callable[[Obj], object], expected: str
) -> None:
    _refused(objects[1], mutate, expected)


def test_good_values_of_the_same_fields(objects: list[Obj]) -> None:
    service, trigger = copy.deepcopy(objects[0]), copy.deepcopy(objects[1])
    service["metadata"]["name"] = "fn1"
    _template_annotations(service).update(
        {
            "serving.knative.dev/progress-deadline": "10m",
            "autoscaling.knative.dev/initial-scale": str(2**31 - 1),
        }
    )
    _pod(service)["volumes"][1]["emptyDir"]["medium"] = "Memory"
    _c(service)["volumeMounts"][1]["mountPath"] = "/tmp/"
    validate_object(service)
    trigger["spec"]["subscriber"]["uri"] = "/events"  # relative beside a ref: a path on it
    trigger["spec"]["delivery"] = {"timeout": "PT0.1S", "deadLetterSink": {"uri": "http://d/x"}}
    validate_object(trigger)
