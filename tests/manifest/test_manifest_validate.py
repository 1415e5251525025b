"""Each rule Knative's admission webhooks enforce (and the schemas miss) has a refusal here.

Every case starts from a valid rendered object, breaks one field and checks that the
error names that field.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from conftest import MakePlugin
from govfn.manifest import ManifestError, ManifestOptions, render_function, validate_object

Obj = dict[str, Any]
C = "spec.template.spec.containers[0]"


def _c(obj: Obj) -> Obj:
    container: Obj = obj["spec"]["template"]["spec"]["containers"][0]
    return container


def _sc(obj: Obj) -> Obj:
    context: Obj = _c(obj)["securityContext"]
    return context


SERVICE_CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    (
        "reserved port",
        lambda o: _c(o)["ports"][0].update(containerPort=8012),
        f"{C}.ports[0].containerPort: 8012 is reserved",
    ),
    (
        "reserved port 9091",
        lambda o: _c(o)["ports"][0].update(containerPort=9091),
        f"{C}.ports[0].containerPort: 9091 is reserved",
    ),
    ("port name", lambda o: _c(o)["ports"][0].update(name="http"), f"{C}.ports[0].name"),
    (
        "two ports",
        lambda o: _c(o)["ports"].append({"containerPort": 9000}),
        f"{C}.ports: at most one",
    ),
    ("udp", lambda o: _c(o)["ports"][0].update(protocol="UDP"), f"{C}.ports[0].protocol"),
    (
        "port range",
        lambda o: _c(o)["ports"][0].update(containerPort=70000),
        f"{C}.ports[0].containerPort",
    ),
    (
        "two probe handlers",
        lambda o: _c(o)["readinessProbe"].update(tcpSocket={"port": 8080}),
        f"{C}.readinessProbe: exactly one handler",
    ),
    (
        "no probe handler",
        lambda o: _c(o).update(livenessProbe={"periodSeconds": 3}),
        f"{C}.livenessProbe: exactly one handler",
    ),
    (
        "probe port",
        lambda o: _c(o)["readinessProbe"]["httpGet"].update(port=9000),
        f"{C}.readinessProbe.httpGet.port",
    ),
    ("env PORT", lambda o: _c(o)["env"].append({"name": "PORT", "value": "1"}), "PORT is reserved"),
    (
        "env K_SERVICE",
        lambda o: _c(o)["env"].append({"name": "K_SERVICE", "value": "x"}),
        "K_SERVICE is reserved",
    ),
    (
        "env K_CONFIGURATION",
        lambda o: _c(o)["env"].append({"name": "K_CONFIGURATION", "value": "x"}),
        "K_CONFIGURATION is reserved",
    ),
    (
        "env K_REVISION",
        lambda o: _c(o)["env"].append({"name": "K_REVISION", "value": "x"}),
        "K_REVISION is reserved",
    ),
    (
        "env value int",
        lambda o: _c(o)["env"].append({"name": "N", "value": 1}),
        f"{C}.env[1].value",
    ),
    ("env name", lambda o: _c(o)["env"].append({"name": "1=x", "value": "1"}), f"{C}.env[1].name"),
    (
        "autoscaling on the Service",
        lambda o: o["metadata"]["annotations"].update({"autoscaling.knative.dev/min-scale": "1"}),
        "metadata.annotations[autoscaling.knative.dev/min-scale]: autoscaling annotations",
    ),
    (
        "annotation int",
        lambda o: o["spec"]["template"]["metadata"].update(
            annotations={"autoscaling.knative.dev/min-scale": 1}
        ),
        "template.metadata.annotations[autoscaling.knative.dev/min-scale]: value 1 must be",
    ),
    (
        "min above max",
        lambda o: o["spec"]["template"]["metadata"].update(
            annotations={
                "autoscaling.knative.dev/min-scale": "4",
                "autoscaling.knative.dev/max-scale": "2",
            }
        ),
        "max-scale]: 2 is below min-scale 4",
    ),
    (
        "target",
        lambda o: o["spec"]["template"]["metadata"].update(
            annotations={"autoscaling.knative.dev/target": "0"}
        ),
        "autoscaling.knative.dev/target]",
    ),
    (
        "label int",
        lambda o: o["metadata"]["labels"].update(tier=2),
        "metadata.labels[tier]: value 2",
    ),
    ("label value", lambda o: o["metadata"]["labels"].update(tier="a b"), "metadata.labels[tier]"),
    (
        "label key",
        lambda o: o["metadata"]["labels"].update({"Bad_Prefix/x": "1"}),
        "metadata.labels[Bad_Prefix/x]",
    ),
    (
        "visibility",
        lambda o: o["metadata"]["labels"].update({"networking.knative.dev/visibility": "public"}),
        "metadata.labels[networking.knative.dev/visibility]",
    ),
    (
        "containerConcurrency high",
        lambda o: o["spec"]["template"]["spec"].update(containerConcurrency=1001),
        "spec.template.spec.containerConcurrency: 1001 is out of range [0, 1000]",
    ),
    (
        "containerConcurrency negative",
        lambda o: o["spec"]["template"]["spec"].update(containerConcurrency=-1),
        "spec.template.spec.containerConcurrency: -1 is out of range",
    ),
    (
        "timeoutSeconds",
        lambda o: o["spec"]["template"]["spec"].update(timeoutSeconds=601),
        "spec.template.spec.timeoutSeconds: 601 is out of range [0, 600]",
    ),
    (
        "float quantity",
        lambda o: _c(o)["resources"]["requests"].update(cpu=0.1),
        f"{C}.resources.requests.cpu: 0.1 is not a quantity",
    ),
    (
        "bad quantity",
        lambda o: _c(o)["resources"]["limits"].update(memory="lots"),
        f"{C}.resources.limits.memory",
    ),
    (
        "request above limit",
        lambda o: _c(o)["resources"]["requests"].update(memory="1Gi"),
        f"{C}.resources.requests.memory: '1Gi' is above the limit",
    ),
    (
        "two containers",
        lambda o: o["spec"]["template"]["spec"]["containers"].append({"image": "x"}),
        "spec.template.spec.containers: exactly one",
    ),
    (
        "unknown volume",
        lambda o: _c(o)["volumeMounts"].append({"name": "cache", "mountPath": "/cache"}),
        f"{C}.volumeMounts[2].name",
    ),
    ("name too long", lambda o: o["metadata"].update(name="x" * 64), "metadata.name"),
    ("name upper case", lambda o: o["metadata"].update(name="Billing"), "metadata.name"),
]

PSS_CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    ("runAsNonRoot", lambda o: _sc(o).update(runAsNonRoot=False), "securityContext.runAsNonRoot"),
    (
        "privilege escalation",
        lambda o: _sc(o).pop("allowPrivilegeEscalation"),
        "securityContext.allowPrivilegeEscalation",
    ),
    (
        "capabilities not dropped",
        lambda o: _sc(o)["capabilities"].update(drop=["NET_RAW"]),
        "securityContext.capabilities.drop",
    ),
    (
        "capability added",
        lambda o: _sc(o)["capabilities"].update(add=["SYS_ADMIN"]),
        "securityContext.capabilities.add",
    ),
    (
        "seccomp",
        lambda o: _sc(o)["seccompProfile"].update(type="Unconfined"),
        "securityContext.seccompProfile.type",
    ),
    ("privileged", lambda o: _sc(o).update(privileged=True), "securityContext.privileged"),
    ("root user", lambda o: _sc(o).update(runAsUser=0), "securityContext.runAsUser"),
    (
        "writable root",
        lambda o: _sc(o).update(readOnlyRootFilesystem=False),
        "securityContext.readOnlyRootFilesystem",
    ),
]

T = "spec"
TRIGGER_CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    (
        "broker and brokerRef",
        lambda o: o[T].update(brokerRef={"name": "x"}),
        "spec.broker: exactly one",
    ),
    ("no broker", lambda o: o[T].pop("broker"), "spec.broker: exactly one"),
    ("no subscriber", lambda o: o[T].pop("subscriber"), "spec.subscriber"),
    (
        "empty subscriber",
        lambda o: o[T].update(subscriber={}),
        "spec.subscriber: needs a ref or a uri",
    ),
    (
        "subscriber ref name",
        lambda o: o[T]["subscriber"]["ref"].pop("name"),
        "spec.subscriber.ref.name",
    ),
    (
        "upper-case attribute",
        lambda o: o[T]["filter"]["attributes"].update(Source="x"),
        "spec.filter.attributes[Source]: attribute name 'Source' must match",
    ),
    (
        "dashed attribute",
        lambda o: o[T]["filter"]["attributes"].update({"my-ext": "x"}),
        "spec.filter.attributes[my-ext]",
    ),
    (
        "digit-first attribute",
        lambda o: o[T]["filter"]["attributes"].update({"1x": "x"}),
        "spec.filter.attributes[1x]",
    ),
    (
        "attribute value",
        lambda o: o[T]["filter"]["attributes"].update(source=1),
        "spec.filter.attributes[source]",
    ),
    (
        "two dialects",
        lambda o: o[T].update(filters=[{"exact": {"type": "a"}, "prefix": {"type": "b"}}]),
        "spec.filters[0]: exactly one dialect",
    ),
    (
        "filters attribute",
        lambda o: o[T].update(filters=[{"prefix": {"Type": "a"}}]),
        "spec.filters[0].prefix[Type]",
    ),
    (
        "backoffPolicy",
        lambda o: o[T].update(delivery={"backoffPolicy": "random"}),
        "spec.delivery.backoffPolicy",
    ),
    (
        "backoffDelay",
        lambda o: o[T].update(delivery={"backoffDelay": "5s"}),
        "spec.delivery.backoffDelay: '5s' is not an ISO-8601 duration",
    ),
    ("timeout", lambda o: o[T].update(delivery={"timeout": "P"}), "spec.delivery.timeout"),
    ("retry", lambda o: o[T].update(delivery={"retry": -1}), "spec.delivery.retry"),
    (
        "deadLetterSink",
        lambda o: o[T].update(delivery={"deadLetterSink": {}}),
        "spec.delivery.deadLetterSink: needs a ref or a uri",
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
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"{broken['kind']} ")


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), SERVICE_CASES, ids=[c[0] for c in SERVICE_CASES]
)
def test_service_refusals(
    objects: list[Obj], case: str, mutate: Callable[[Obj], object], expected: str
) -> None:
    _refused(objects[0], mutate, expected)


@pytest.mark.parametrize(("case", "mutate", "expected"), PSS_CASES, ids=[c[0] for c in PSS_CASES])
def test_restricted_pss_refusals(
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


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("PT0.5S", True),
        ("PT1M", True),
        ("P1DT2H", True),
        ("PT", False),
        ("5s", False),
        ("P", False),
    ],
)
def test_durations(objects: list[Obj], value: str, ok: bool) -> None:
    trigger = copy.deepcopy(objects[1])
    trigger["spec"]["delivery"] = {"backoffDelay": value, "backoffPolicy": "linear"}
    if ok:
        validate_object(trigger)
    else:
        with pytest.raises(ManifestError, match="backoffDelay"):
            validate_object(trigger)


def test_foreign_kind_refused() -> None:
    with pytest.raises(ManifestError, match="kind: apps/v1/Deployment is not a govfn object"):
        validate_object({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}})
