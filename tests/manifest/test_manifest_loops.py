"""Reply loops: Knative re-injects replies into the same broker."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import MakePlugin
from govfn.manifest import ManifestError, ManifestOptions, render_all, render_function
from govfn.manifest.loops import find_loop, reply_graph
from govfn.registry import FunctionRegistry


def test_builtins_have_no_loop(builtins: FunctionRegistry, options: ManifestOptions) -> None:
    assert len(render_all(builtins, options)) == 4 + 2  # and a SinkBinding each


def test_self_loop_refused(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    plugin = make_plugin("pingpong", triggers=("PING",), emits=("PING",))
    with pytest.raises(ManifestError) as caught:
        render_function(plugin, options)
    assert caught.value.field == "functions[pingpong].emits"
    assert "pingpong emits 'PING' -> triggers pingpong" in str(caught.value)
    assert "--allow-reply-loops" in str(caught.value)


def test_loop_through_other_functions_refused(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    plugins = [
        make_plugin("a", triggers=("START", "C_DONE"), emits=("A_DONE",)),
        make_plugin("b", triggers=("A_DONE",), emits=("B_DONE",)),
        make_plugin("c", triggers=("B_DONE",), emits=("C_DONE",)),
        make_plugin("d", triggers=("C_DONE",)),
    ]
    with pytest.raises(ManifestError) as caught:
        render_all(plugins, options)
    assert str(caught.value) == (
        "functions[a].emits: reply loop: a emits 'A_DONE' -> b emits 'B_DONE' -> "
        "c emits 'C_DONE' -> triggers a; the broker re-injects replies, so this circulates "
        "until its TTL runs out (allow with --allow-reply-loops)"
    )
    # each alone is fine: the loop needs all three
    for plugin in plugins:
        render_function(plugin, options)


def test_chain_without_cycle_is_fine(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    plugins = [
        make_plugin("a", triggers=("START",), emits=("A_DONE",)),
        make_plugin("b", triggers=("A_DONE",), emits=("B_DONE",)),
        make_plugin("c", triggers=("A_DONE", "B_DONE")),
    ]
    assert len(render_all(plugins, options)) == 3 + 4 + 3


def test_allowed_explicitly(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    plugin = make_plugin("pingpong", triggers=("PING",), emits=("PING",))
    objects = render_all([plugin], replace(options, allow_reply_loops=True))
    assert [obj["kind"] for obj in objects] == ["Service", "Trigger", "SinkBinding"]


def test_graph_and_shortest_loop(make_plugin: MakePlugin) -> None:
    plugins = [
        make_plugin("a", triggers=("X",), emits=("Y",)),
        make_plugin("b", triggers=("Y",), emits=("X",)),
        make_plugin("c", triggers=("Y",)),
    ]
    graph = reply_graph(plugins)
    assert graph == {"a": [("Y", "b"), ("Y", "c")], "b": [("X", "a")], "c": []}
    assert find_loop(graph, "a") == [("a", "Y"), ("b", "X")]
    assert find_loop(graph, "c") is None
