"""Benchmark: render (and validate, and write as YAML) the manifests of 1,000 functions.

Goal: under 1 s. Each function has two trigger types and a reply type that triggers
nothing, so the run covers 1,000 Services, 2,000 Triggers and the reply-loop check.

    .venv/bin/python -m benchmarks.manifests [--functions 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import yaml

from govfn.function import FunctionPlugin
from govfn.manifest import ManifestOptions, render_all
from govfn.manifest.output import Dumper, dump_yaml
from govfn.registry import FunctionRegistry


def make_registry(count: int) -> FunctionRegistry:
    registry = FunctionRegistry()
    for i in range(count):
        attributes = {
            "__module__": "bench.functions",
            "function_id": f"fn-{i:05d}",
            "trigger_events": (f"BENCH_{i}_REQUESTED", f"BENCH_{i}_RETRIED"),
            "emits": (f"BENCH_{i}_DONE",),
        }
        plugin_class = type(f"Bench{i}", (FunctionPlugin,), attributes)
        registry.register(plugin_class())
    return registry


def run_once(registry: FunctionRegistry, options: ManifestOptions) -> tuple[float, float, int, int]:
    start = time.perf_counter()
    objects = render_all(registry, options)
    rendered = time.perf_counter()
    text = dump_yaml(objects)
    done = time.perf_counter()
    return rendered - start, done - start, len(text), len(objects)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    registry = make_registry(args.functions)
    options = ManifestOptions(
        image="registry.example/govfn:1.0.0",
        namespace="functions",
        min_scale=0,
        max_scale=10,
        delivery={"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.5S"},
    )
    runs = [run_once(registry, options) for _ in range(args.repeat)]
    render = statistics.median(run[0] for run in runs)
    total = statistics.median(run[1] for run in runs)
    size, count = runs[0][2], runs[0][3]
    dumper = "libyaml CSafeDumper" if Dumper is not yaml.SafeDumper else "pure-Python SafeDumper"
    print(
        f"manifests for {args.functions} functions ({count} objects, "
        f"{size / 1e6:.1f} MB YAML, {dumper}): render+validate {render * 1000:.0f} ms, "
        f"with YAML {total * 1000:.0f} ms (median of {args.repeat}; goal < 1000 ms)"
    )
    try:
        from benchmarks import results
    except ImportError:
        return
    results.save(
        "manifests",
        {
            "functions": args.functions,
            "objects": count,
            "render_validate_ms": round(render * 1000, 1),
            "render_validate_yaml_ms": round(total * 1000, 1),
            "yaml_bytes": size,
            "dumper": dumper,
        },
    )


if __name__ == "__main__":
    main()
