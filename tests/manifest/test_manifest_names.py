"""Object names: DNS-1123 labels of at most 63 characters, deterministic, never colliding."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import MakePlugin
from govfn.manifest import ManifestError, ManifestOptions, render_all
from govfn.manifest.names import bounded, service_name, slug, trigger_name
from govfn.names import DNS1123_LABEL


def test_slug() -> None:
    assert slug("GSAP_CR_RECEIVED") == "gsap-cr-received"
    assert slug("com.example.order.v1") == "com-example-order-v1"
    assert slug("__") == ""


def test_short_names_are_kept() -> None:
    assert service_name("", "billing") == "billing"
    assert trigger_name("billing", "GSAP_CR_RECEIVED") == "billing-gsap-cr-received"
    assert trigger_name("billing", "!!!") == "billing-event"


def test_long_names_are_cut_with_a_hash() -> None:
    name = service_name("team-payments-", "x" * 63)
    assert len(name) == 63 and DNS1123_LABEL.match(name)
    assert name == service_name("team-payments-", "x" * 63)  # deterministic
    assert name != service_name("team-payments-", "x" * 62 + "y")  # same prefix, different hash
    assert name.startswith("team-payments-xxx")


def test_cut_never_ends_on_a_dash() -> None:
    name = bounded("a" * 53 + "-" + "b" * 20)
    assert len(name) <= 63 and DNS1123_LABEL.match(name) and "--" not in name


def test_trigger_hash_uses_the_exact_type() -> None:
    service = "s" * 50
    first = trigger_name(service, "order.placed.v1.with-a-long-tail")
    second = trigger_name(service, "ORDER_PLACED_V1_WITH_A_LONG_TAIL")
    assert first != second  # same slug, different types


def test_rendered_names_are_labels(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    plugin = make_plugin("y" * 63, triggers=("A" * 80, "B" * 80))
    objects = render_all([plugin], replace(options, name_prefix="prefix-"))
    for obj in objects:
        assert len(obj["metadata"]["name"]) <= 63
        assert DNS1123_LABEL.match(obj["metadata"]["name"])
    assert objects[1]["spec"]["subscriber"]["ref"]["name"] == objects[0]["metadata"]["name"]


def test_trigger_collision_is_an_error(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    plugin = make_plugin("orders", triggers=("order.placed", "ORDER_PLACED"))
    with pytest.raises(ManifestError) as caught:
        render_all([plugin], options)
    message = str(caught.value)
    assert "Trigger name 'orders-order-placed'" in message
    assert "'order.placed'" in message and "'ORDER_PLACED'" in message
    assert caught.value.field == "metadata.name"


def test_trigger_collision_across_functions(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    # service "a" + type "b-c" and service "a-b" + type "c" both give "a-b-c"
    plugins = [make_plugin("a", triggers=("B_C",)), make_plugin("a-b", triggers=("C",))]
    with pytest.raises(ManifestError, match="Trigger name 'a-b-c' is produced by both"):
        render_all(plugins, options)


def test_bad_prefix(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    with pytest.raises(ManifestError, match=r"^name_prefix: "):
        render_all([make_plugin("x")], replace(options, name_prefix="-"))
