"""Reply-loop detection.

Knative re-injects a function's reply into the Broker it came from. If a function emits a
type that triggers itself, directly or through other functions, every event circulates
until the broker's TTL (255 hops) runs out. The graph here has an edge F -> G when F emits
a type that triggers G; a function on a cycle is refused unless loops are allowed.

The SinkBinding sends every Chronicle record to its sink as a CloudEvent of the record's
type (FUNCTION_INVOKED, FUNCTION_COMPLETED). When that sink is the Triggers' broker, a
function triggered by a record type is triggered by its own records: a loop as well.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from govfn.chronicle.records import EVENT_CODES
from govfn.function import FunctionPlugin
from govfn.manifest.errors import ManifestError


def reply_graph(plugins: Iterable[FunctionPlugin]) -> dict[str, list[tuple[str, str]]]:
    """function id -> [(event type it emits, function id that type triggers)], sorted."""
    plugins = list(plugins)
    by_trigger: dict[str, list[str]] = {}
    for plugin in plugins:
        for kind in plugin.trigger_events:
            by_trigger.setdefault(kind, []).append(plugin.function_id)
    return {
        plugin.function_id: sorted(
            (kind, target) for kind in plugin.emits for target in by_trigger.get(kind, ())
        )
        for plugin in plugins
    }


def find_loop(graph: dict[str, list[tuple[str, str]]], start: str) -> list[tuple[str, str]] | None:
    """The shortest path of (function, emitted type) hops from `start` back to itself."""
    previous: dict[str, tuple[str, str]] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for kind, target in graph.get(current, ()):
            if target == start:
                path = [(current, kind)]
                while path[0][0] != start:
                    path.insert(0, previous[path[0][0]])
                return path
            if target not in previous:
                previous[target] = (current, kind)
                queue.append(target)
    return None


def describe(path: Sequence[tuple[str, str]]) -> str:
    hops = " -> ".join(f"{function} emits {kind!r}" for function, kind in path)
    return f"{hops} -> triggers {path[0][0]}"


def check_reply_loops(plugins: Iterable[FunctionPlugin]) -> None:
    """Raise ManifestError for the first function (by id) that can trigger itself."""
    graph = reply_graph(plugins)
    for function_id in sorted(graph):
        path = find_loop(graph, function_id)
        if path is not None:
            raise ManifestError(
                f"functions[{function_id}].emits",
                f"reply loop: {describe(path)}; the broker re-injects replies, so this "
                "circulates until its TTL runs out (allow with --allow-reply-loops)",
            )


def check_record_loops(plugins: Iterable[FunctionPlugin]) -> None:
    """Raise ManifestError for the first function (by id) triggered by its own records, for
    when the Chronicle's records go to the Triggers' broker."""
    for plugin in sorted(plugins, key=lambda plugin: plugin.function_id):
        looped = [kind for kind in plugin.trigger_events if kind in EVENT_CODES]
        if looped and plugin.chronicle_enabled:
            raise ManifestError(
                f"functions[{plugin.function_id}].trigger_events",
                f"{looped[0]!r} is a Chronicle record type and the records go to the "
                "Triggers' broker (--chronicle-sink), so each invocation triggers the next; "
                "send them elsewhere, or allow with --allow-reply-loops",
            )
