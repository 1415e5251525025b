"""`govfn chronicle export --format openlineage`: every event valid against the vendored
OpenLineage schema (and every facet against its own), and faithful to the records."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from govfn import FunctionContext
from govfn.chronicle import FUNCTION_COMPLETED, FUNCTION_INVOKED, Ledger, LedgerChronicle
from govfn.chronicle.lineage.openlineage import (
    CHRONICLE_FACET_URL,
    ERROR_URL,
    FUNCTION_FACET_URL,
    PRODUCER,
    SCHEMA_URL,
    OpenLineageExport,
    run_id,
)
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

from support.lineage_pipeline import Broker
from support.openlineage_schema import REPO, VENDORED, load, validate, validate_event


def test_the_vendored_schemas_are_the_recorded_files() -> None:
    manifest = load(VENDORED / "VENDORED.json")
    assert re.fullmatch(r"[0-9a-f]{40}", manifest["commit"])
    for name, entry in manifest["files"].items():
        data = (VENDORED / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert json.loads(data)["$id"] == entry["id"]
        assert f"/{entry['version']}/" in entry["id"]
    assert SCHEMA_URL.startswith(manifest["files"]["OpenLineage.json"]["id"] + "#")
    assert set(manifest["files"]) == {
        str(p.relative_to(VENDORED)) for p in VENDORED.rglob("*.json") if p.name != "VENDORED.json"
    }


def test_the_validator_refuses_what_the_spec_refuses() -> None:
    good = {
        "eventType": "START",
        "eventTime": "2026-01-01T00:00:00.000001Z",
        "producer": "https://govfn.dev/govfn/0.1.0",
        "schemaURL": SCHEMA_URL,
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "ns", "name": "f"},
    }
    validate_event(good)
    for broken in (
        {**good, "eventType": "BEGUN"},
        {**good, "run": {"runId": "inv-1"}},
        {**good, "eventTime": "yesterday"},
        {**good, "job": {"namespace": "ns"}},
        {**good, "run": {**good["run"], "facets": {"x": {"_producer": "https://p"}}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, SCHEMA_URL)
    base = {"_producer": PRODUCER}
    for url, facet in (
        (CHRONICLE_FACET_URL, {**base, "recordCid": "not-a-cid", "eventCode": "0x2A01"}),
        (ERROR_URL, {**base, "message": "m"}),  # no programmingLanguage
        (FUNCTION_FACET_URL, {**base, "functionId": "f", "version": "one"}),
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate({**facet, "_schemaURL": url}, url)


def export(ledger: Ledger, *args: str, namespace: str | None = "billing-prod") -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFN_")}
    if namespace is not None:
        env["GOVFN_NAMESPACE"] = namespace
    return subprocess.run(
        [sys.executable, "-m", "govfn", "chronicle", "export", "--ledger", str(ledger.path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )


def test_every_exported_event_is_valid_and_says_what_its_record_says(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=2)
    broker.submit_cr("cr-2", quantity=8)  # the quota function fails on this one
    done = export(ledger, "--format", "openlineage")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    records = list(ledger.records())
    function_records = [r for r in records if r.type in (FUNCTION_INVOKED, FUNCTION_COMPLETED)]
    assert len(events) == len(function_records) == len(records) == 16
    versions = {}
    for event, record in zip(events, function_records, strict=True):
        validate_event(event)
        p = record.payload
        facet = event["run"]["facets"]["govfn_chronicle"]
        assert facet["recordCid"] == record.cid
        assert event["run"]["runId"] == p["invocation_id"]
        assert event["job"]["namespace"] == "billing-prod"
        assert event["job"]["name"] == p["function_id"]
        assert event["job"]["facets"]["govfn_function"]["functionId"] == p["function_id"]
        assert {d["namespace"] for d in event["inputs"] + event["outputs"]} <= {"cid"}
        if record.type == FUNCTION_INVOKED:
            versions[p["invocation_id"]] = p["function_version"]
            assert event["eventType"] == "START"
            assert event["eventTime"] == p["invoked_at"]
            assert [d["name"] for d in event["inputs"]] == [p["trigger_event_cid"]]
            assert facet["invokedCid"] == record.cid
        else:
            assert event["eventType"] == ("COMPLETE" if p["success"] else "FAIL")
            assert event["eventTime"] == p["completed_at"]
            assert facet["invokedCid"] == p["invoked_cid"]
            assert facet["completedCid"] == record.cid
            outputs = [d["name"] for d in event["outputs"]]
            expected = [p["output_cid"]] if p["success"] else []
            if p["success"] and p["reply_cid"] not in (None, p["output_cid"]):
                expected.append(p["reply_cid"])
            assert outputs == expected
        version = event["job"]["facets"]["govfn_function"]["version"]
        assert version == versions[p["invocation_id"]] == "1.0.0"
    failed = [e for e in events if e["eventType"] == "FAIL"]
    assert [e["job"]["name"] for e in failed] == ["quota"]
    assert failed[0]["run"]["facets"]["errorMessage"]["message"] == "quota exceeded: 8 units"
    # the billing reply's data (a dataset named by CID) is the meter run's input
    billing_done = next(e for e in events if e["job"]["name"] == "billing" and e["outputs"])
    meter_start = next(e for e in events if e["job"]["name"] == "meter")
    assert billing_done["outputs"][1]["name"] == meter_start["inputs"][0]["name"]


def test_the_namespace_defaults_and_an_empty_one_is_refused(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=1)
    default = export(ledger, "--format", "openlineage", namespace=None)
    assert {json.loads(line)["job"]["namespace"] for line in default.stdout.splitlines()} == {
        "govfn"
    }
    empty = export(ledger, "--format", "openlineage", "--namespace", " ")
    assert empty.returncode == 2 and "--namespace" in empty.stderr
    assert "Traceback" not in empty.stderr
    plain = export(ledger)
    assert [json.loads(line)["cid"] for line in plain.stdout.splitlines()] == [
        r.cid for r in ledger.records()
    ]


def test_an_invocation_id_that_is_no_uuid_becomes_a_uuid_named_by_it(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "chronicle.db")
    registry = load_functions(("govfn.functions",), FunctionRegistry(), include_entry_points=False)
    runtime = FunctionRuntime(registry, LedgerChronicle(ledger))
    context = FunctionContext(invocation_id="inv-42", event_id="e-1", event_source="/tests")
    result = asyncio.run(runtime.invoke("echo", {"hello": "world"}, context))
    assert result.success
    events = list(OpenLineageExport("ns").events(ledger.records()))
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        validate_event(event)
        assert (
            event["run"]["runId"]
            == run_id("inv-42")
            == str(uuid.uuid5(uuid.UUID("6d1f1a52-3c1e-5b7e-9a8e-676f76666e00"), "inv-42"))
        )
        assert event["run"]["facets"]["govfn_chronicle"]["invocationId"] == "inv-42"
    ledger.close()


def test_a_handlers_exception_text_stays_out_of_the_fail_event() -> None:
    from govfn.chronicle.records import function_record

    record = function_record(
        FUNCTION_COMPLETED,
        function_id="f",
        invocation_id=str(uuid.uuid4()),
        invoked_cid=None,
        trigger_event_cid=None,
        success=False,
        duration_ms=1.5,
        output_cid=None,
        error="RuntimeError: password=hunter2",
        error_kind="error",
        completed_at="2026-01-01T00:00:00.000000Z",
    )
    event = OpenLineageExport().event(record)
    assert event is not None and event["eventType"] == "FAIL"
    assert "hunter2" not in json.dumps(event)
    assert "see the server log" in event["run"]["facets"]["errorMessage"]["message"]


def test_serving_modules_do_not_import_jsonschema() -> None:
    code = (
        "import sys, govfn.runtime, govfn.chronicle.lineage.graph, "
        "govfn.chronicle.lineage.openlineage, govfn.chronicle.lineage.formats, govfn.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jsonschema', 'referencing')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
