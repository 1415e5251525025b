"""The Grafana dashboard in deploy/grafana queries only what /metrics serves: every PromQL
expression parses, and every series it selects, with the labels it matches and groups by,
is in a real scrape of `govfn serve` after invocations of each outcome."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from support.http_server import (
    REPO,
    SAMPLE_MODULES,
    Server,
    binary_headers,
    start_server,
    stop_server,
)
from support.promql import Parsed, PromQLError, parse
from support.sink_double import SinkDouble

DASHBOARD = REPO / "deploy" / "grafana" / "govfn-dashboard.json"
REQUIRED = {  # what the dashboard must show
    "govfn_invocations_total",
    "govfn_invocation_duration_seconds_bucket",
    "govfn_in_flight",
    "govfn_chronicle_outbox_depth",
    "govfn_chronicle_sink_failures_total",
}
GRAFANA_FUNCTIONS = re.compile(r"^label_values\((\w+), *(\w+)\)$")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$")
_LABEL = re.compile(r'([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"')


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def expressions() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]


def scraped_series(text: str) -> dict[str, set[str]]:
    """Each series name in an exposition-format scrape, with the label names it carries."""
    series: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not an exposition line: {line!r}"
        labels = series.setdefault(match.group(1), set())
        labels |= set(_LABEL.findall(match.group(2) or ""))
    return series


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, set[str]]]:
    """/metrics of a govfn serve with a K_SINK, after a success, a failure and a refusal."""
    sink = SinkDouble()
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    modules = [arg for name in SAMPLE_MODULES for arg in ("--functions", name)]
    server = start_server(tmp_path_factory.mktemp("dashboard"), *modules, env={"K_SINK": sink.url})
    try:
        sent = subprocess.run(
            [sys.executable, "-m", "govfn", "send", server.url + "/", "--type", "ECHO_REQUESTED",
             "--data", "{}", "--repeat", "5", "--concurrency", "2"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert post(server, binary_headers("FAIL_REQUESTED", "f-1")) >= 500
        assert post(server, binary_headers("NOBODY_HANDLES_THIS", "r-1")) == 400
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as answer:
            yield scraped_series(answer.read().decode())
    finally:
        stop_server(server)
        sink.shutdown()
        sink.server_close()
        thread.join(timeout=5)


def post(server: Server, headers: dict[str, str]) -> int:
    request = urllib.request.Request(server.url + "/", data=b"{}", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_every_expression_parses_and_the_required_metrics_are_shown() -> None:
    parsed = [parse(expr) for expr in expressions()]
    shown = {selector.metric for p in parsed for selector in p.selectors}
    assert shown >= REQUIRED, REQUIRED - shown


def test_every_queried_series_and_label_is_in_a_real_scrape(scrape: dict[str, set[str]]) -> None:
    for expr in expressions():
        parsed: Parsed = parse(expr)
        labels_here: set[str] = set()
        for selector in parsed.selectors:
            assert selector.metric in scrape, f"{selector.metric} (in {expr}) is not in /metrics"
            missing = selector.matcher_labels - scrape[selector.metric]
            assert not missing, f"{selector.metric} has no label {missing} (in {expr})"
            labels_here |= scrape[selector.metric]
        assert parsed.grouping_labels <= labels_here, (expr, parsed.grouping_labels - labels_here)


def test_latency_quantiles_come_from_the_histogram_buckets() -> None:
    quantiles = [expr for expr in expressions() if expr.startswith("histogram_quantile(")]
    assert {expr.split(",")[0] for expr in quantiles} == {
        "histogram_quantile(0.5", "histogram_quantile(0.9", "histogram_quantile(0.99"
    }  # fmt: skip
    for expr in quantiles:
        parsed = parse(expr)
        assert [s.metric for s in parsed.selectors] == ["govfn_invocation_duration_seconds_bucket"]
        assert "le" in parsed.grouping_labels


def test_the_template_variables_query_real_labels(scrape: dict[str, set[str]]) -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    query = variables["function"]["query"]["query"]
    match = GRAFANA_FUNCTIONS.match(query)
    assert match is not None, query
    metric, label = match.groups()
    assert label in scrape[metric]


def test_the_dashboard_is_well_formed() -> None:
    document = dashboard()
    assert document["uid"] and document["title"] and document["schemaVersion"] >= 36
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    for panel in document["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


@pytest.mark.parametrize(
    "broken",
    [
        "sum(rate(govfn_invocations_total[5m])",
        "rate(govfn_invocations_total[5m]",
        'govfn_in_flight{function="echo"',
        "govfn_in_flight{function=echo}",
        "no_such_function(govfn_in_flight)",
        "sum by (function (govfn_in_flight)",
        "rate(govfn_invocations_total[five])",
        "govfn_in_flight govfn_in_flight",
        '{function="echo"}',
    ],
)
def test_the_parser_refuses_malformed_expressions(broken: str) -> None:
    with pytest.raises(PromQLError):
        parse(broken)


def test_the_parser_lists_selectors_and_labels() -> None:
    parsed = parse(
        'sum without (pod) (rate(a_total{x=~"$v",y!="z"}[$__rate_interval] offset 5m))'
        " / on (function) group_left () max by (function) (b) > bool 0.5 or -Inf"
    )
    assert [(s.metric, s.matcher_labels) for s in parsed.selectors] == [
        ("a_total", {"x", "y"}), ("b", set())
    ]  # fmt: skip
    assert parsed.grouping_labels == {"pod", "function"}
    assert parsed.functions == {"sum", "rate", "max"}
