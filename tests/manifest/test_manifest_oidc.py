"""Knative sender identity in the rendered objects: `--oidc-issuer` and `--event-sender`
(issue 20, item 3), through the renderer, `govfn manifests`, `govfn apply` and the CRDs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from govfn_manifest_apiserver import ApiServer
from govfn_manifest_samples import Shipping
from govfn_manifest_schemas import schema_errors

from conftest import MakePlugin
from govfn.cli.group import cli
from govfn.manifest import ManifestError, ManifestOptions, render_all, render_function
from govfn.manifest.oidc import child_name, trigger_service_account, trigger_subject

ISSUER = "https://kubernetes.default.svc"
SUFFIX = "-oidc-eventing.knative.dev-trigger"


@pytest.mark.parametrize(
    ("trigger", "account"),
    [  # ../shared/notes/knative-oidc.md: computed by knative/eventing 8cf4c4b67 itself
        ("billing-gsap-cr-received", "billing-gsap-cr-received-oidc-eventing.knative.dev-trigger"),
        (
            "order-processor-order-created",
            "order-processor-order-created-oidc-eventing.knative.dev-trigger",
        ),
        (
            "order-processor-order-created1",
            "order-processor-order-created1e10ea1b3edf40576669878ceee55477f",
        ),
    ],
)
def test_trigger_service_accounts_as_knative_names_them(trigger: str, account: str) -> None:
    assert trigger_service_account(trigger) == account
    assert len(account) <= 63
    assert trigger_subject("shop", trigger) == f"system:serviceaccount:shop:{account}"


def test_child_name_cuts_past_29_characters_with_the_md5_of_name_and_kind() -> None:
    name = "a" * 40 + "-b"
    digest = hashlib.md5((name + "-oidc-eventing.knative.dev-Trigger").encode()).hexdigest()
    assert trigger_service_account(name) == name[:31] + digest  # 63, no suffix left
    assert len(trigger_service_account(name)) == 63
    assert trigger_service_account("x" * 29) == "x" * 29 + SUFFIX  # exactly 63
    # kmeta.ChildName's other branches: a short suffix hashes the parent alone, and a cut
    # that leaves room is padded with the suffix's start, a trailing '-' dropped
    parent = "p" * 70
    short = child_name(parent, "-x")
    assert short == "p" * 29 + hashlib.md5(parent.encode()).hexdigest() + "-x"
    assert len(short) == 63


def oidc_options(**changes: Any) -> ManifestOptions:
    values: dict[str, Any] = {
        "image": "registry.example/govfn:1.0.0",
        "namespace": "shop",
        "oidc_issuer": ISSUER,
    }
    values.update(changes)
    return ManifestOptions(**values)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    container = service["spec"]["template"]["spec"]["containers"][0]
    return {entry["name"]: entry.get("value", "") for entry in container["env"]}


def test_services_get_their_own_audience_and_triggers_ask_for_it(make_plugin: MakePlugin) -> None:
    plugins = [
        make_plugin("orders", triggers=("ORDER_PLACED", "order.retried")),
        make_plugin("shipping", triggers=("ORDER_ACCEPTED",)),
    ]
    objects = render_all(plugins, oidc_options())
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    audiences = {name: env_of(s)["GOVFN_OIDC_AUDIENCE"] for name, s in services.items()}
    assert audiences == {
        "orders": "serving.knative.dev/service/shop/orders",
        "shipping": "serving.knative.dev/service/shop/shipping",
    }
    for service in services.values():
        assert env_of(service)["GOVFN_OIDC_ISSUER"] == ISSUER
        assert "GOVFN_EVENT_SENDERS" not in env_of(service)  # no --event-sender: any valid token
    triggers = [o for o in objects if o["kind"] == "Trigger"]
    assert len(triggers) == 3
    for trigger in triggers:
        subscriber = trigger["spec"]["subscriber"]
        assert subscriber["audience"] == audiences[subscriber["ref"]["name"]]
    for obj in objects:
        assert schema_errors(obj) == []  # the CRDs, strict


def test_without_an_issuer_nothing_changes(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    objects = render_function(make_plugin("orders"), options)
    assert not any(name.startswith("GOVFN_OIDC") for name in env_of(objects[0]))
    assert "audience" not in objects[1]["spec"]["subscriber"]


def test_event_sender_triggers_allows_exactly_the_function_s_own(make_plugin: MakePlugin) -> None:
    long_type = "order-processor-order-created1"  # a Trigger name past 29 characters
    plugin = make_plugin("orders", triggers=("ORDER_PLACED", long_type))
    other = make_plugin("audit", triggers=("AUDITED",))
    senders = ("system:serviceaccount:ops:*", "triggers", "system:serviceaccount:ops:*")
    objects = render_all([plugin, other], oidc_options(event_senders=senders))
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    triggers = {
        o["metadata"]["name"]: o["spec"]["subscriber"]["ref"]["name"]
        for o in objects
        if o["kind"] == "Trigger"
    }
    assert triggers == {
        "orders-order-placed": "orders",
        "orders-order-processor-order-created1": "orders",
        "audit-audited": "audit",
    }
    assert env_of(services["orders"])["GOVFN_EVENT_SENDERS"].split(",") == [
        "system:serviceaccount:ops:*",
        "system:serviceaccount:shop:orders-order-placed" + SUFFIX,
        "system:serviceaccount:shop:orders-order-processor-order-cr"  # its first 31
        + hashlib.md5(
            b"orders-order-processor-order-created1-oidc-eventing.knative.dev-Trigger"
        ).hexdigest(),
    ]
    assert env_of(services["audit"])["GOVFN_EVENT_SENDERS"] == (
        "system:serviceaccount:ops:*,system:serviceaccount:shop:audit-audited" + SUFFIX
    )


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"namespace": None}, "namespace", "--oidc-issuer needs --namespace"),
        ({"oidc_issuer": "http://issuer.example"}, "oidc_issuer", "must be https"),
        ({"oidc_issuer": "kubernetes.default.svc"}, "oidc_issuer", "not an https URL"),
        ({"oidc_issuer": "https://i.example/?a=1"}, "oidc_issuer", "no query"),
        ({"oidc_issuer": None, "event_senders": ("triggers",)}, "event_senders", "needs --oidc"),
        ({"event_senders": ("a,b",)}, "event_senders", "no comma"),
        ({"event_senders": ("a*b",)}, "event_senders", "'*' may only end"),
        ({"event_senders": ("",)}, "event_senders", "non-empty"),
        ({"env": {"GOVFN_OIDC_AUDIENCE": "x"}}, "env[GOVFN_OIDC_AUDIENCE]", "is set by"),
        (
            {"oidc_issuer": None, "env": {"GOVFN_OIDC_ISSUER": ISSUER}},
            "env[GOVFN_OIDC_ISSUER]",
            "also give the Triggers their audience",
        ),
    ],
)
def test_refusals_name_the_field(
    make_plugin: MakePlugin, changes: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        render_function(make_plugin("orders"), oidc_options(**changes))
    assert caught.value.field == field and reason in caught.value.reason, caught.value


def test_own_triggers_of_a_function_without_triggers_are_refused(make_plugin: MakePlugin) -> None:
    plugin = make_plugin("lonely", triggers=())
    with pytest.raises(ManifestError, match="no Triggers: 'triggers' would allow no sender"):
        render_function(plugin, oidc_options(event_senders=("triggers",)))
    objects = render_function(plugin, oidc_options(event_senders=("system:x",)))
    assert env_of(objects[0])["GOVFN_EVENT_SENDERS"] == "system:x"


def manifests(*args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["manifests", "--functions", "govfn.functions", "--image", "img:1", *args],
        catch_exceptions=False,
    )


def test_govfn_manifests_flags_and_config_file(tmp_path: Path) -> None:
    flags = ["--namespace", "shop", "--oidc-issuer", ISSUER, "--event-sender", "triggers"]
    result = manifests(*flags, "--event-sender", "system:serviceaccount:ops:auditor")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    billing = env_of(docs[0])
    assert billing["GOVFN_EVENT_SENDERS"] == (
        "system:serviceaccount:shop:billing-gsap-cr-received" + SUFFIX
        + ",system:serviceaccount:ops:auditor"
    )  # fmt: skip
    assert docs[1]["spec"]["subscriber"]["audience"] == "serving.knative.dev/service/shop/billing"
    config = tmp_path / "govfn.yaml"
    config.write_text(
        f"namespace: shop\noidc-issuer: {ISSUER}\n"
        "event-senders: [triggers, 'system:serviceaccount:ops:auditor']\n"
    )
    from_file = manifests("--config", str(config))
    assert from_file.exit_code == 0, from_file.output
    assert from_file.output == result.output
    refused = manifests("--oidc-issuer", ISSUER)
    assert refused.exit_code == 2
    assert "namespace: --oidc-issuer needs --namespace" in refused.output
    refused = manifests("--event-sender", "triggers")
    assert refused.exit_code == 2 and "event_senders: needs --oidc-issuer" in refused.output


def test_govfn_apply_takes_the_namespace_of_the_context(
    apiserver: ApiServer, kubeconfig: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "apply",
            "--image",
            "img:1",
            "--functions",
            "govfn.functions",
            "--kubeconfig",
            str(kubeconfig),
            "--oidc-issuer",
            ISSUER,
            "--event-sender",
            "triggers",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    objects = apiserver.state.objects  # the double checks each body against the strict CRDs
    service = objects[("serving.knative.dev", "functions", "services", "billing")]
    trigger = objects[("eventing.knative.dev", "functions", "triggers", "billing-gsap-cr-received")]
    audience = "serving.knative.dev/service/functions/billing"  # the context's namespace
    assert env_of(service)["GOVFN_OIDC_AUDIENCE"] == audience
    assert trigger["spec"]["subscriber"]["audience"] == audience
    assert env_of(service)["GOVFN_EVENT_SENDERS"] == (
        "system:serviceaccount:functions:billing-gsap-cr-received" + SUFFIX
    )


def test_long_names_are_shortened_in_the_samples() -> None:
    """The sample with a 63-character Trigger name: its subject is Knative's cut."""
    objects = render_function(Shipping(), oidc_options(event_senders=("triggers",)))
    trigger = objects[1]["metadata"]["name"]
    assert len(trigger) == 63
    subject = env_of(objects[0])["GOVFN_EVENT_SENDERS"]
    assert (
        subject
        == f"system:serviceaccount:shop:{trigger[:31]}"
        + hashlib.md5((trigger + "-oidc-eventing.knative.dev-Trigger").encode()).hexdigest()
    )
