"""Chronicle records as OpenLineage RunEvents (spec 2-0-2).

    FUNCTION_INVOKED                 → START     inputs: the trigger event (and input) CIDs
    FUNCTION_COMPLETED success=true  → COMPLETE  outputs: the output (and reply data) CIDs
    FUNCTION_COMPLETED success=false → FAIL      with an errorMessage facet

The job is the function (namespace: the deployment's, name: the function id, its version
in the `govfn_function` job facet); the run id is the invocation id (a UUID; any other
invocation id is mapped to a name-based UUID and kept in the facet). Datasets are
content, named by CID in the namespace `cid`. The `govfn_chronicle` run facet carries the
record CIDs, so a reader can come back for the record and its inclusion proof.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED, Record
from govfn.version import __version__

SPEC_VERSION = "2-0-2"
SCHEMA_URL = f"https://openlineage.io/spec/{SPEC_VERSION}/OpenLineage.json#/$defs/RunEvent"
PRODUCER = f"https://govfn.dev/govfn/{__version__}"
DATASET_NAMESPACE = "cid"
DEFAULT_NAMESPACE = "govfn"
FACET_SCHEMAS = "https://govfn.dev/schemas/openlineage/1-0-0"
CHRONICLE_FACET_URL = f"{FACET_SCHEMAS}/GovfnChronicleRunFacet.json#/$defs/GovfnChronicleRunFacet"
FUNCTION_FACET_URL = f"{FACET_SCHEMAS}/GovfnFunctionJobFacet.json#/$defs/GovfnFunctionJobFacet"
JOB_TYPE_URL = (
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
)
ERROR_URL = (
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
)
_RUN_IDS = uuid.UUID("6d1f1a52-3c1e-5b7e-9a8e-676f76666e00")  # names non-UUID invocation ids


def run_id(invocation_id: str) -> str:
    """The invocation id if it is a UUID (canonical form), else a UUID named by it."""
    try:
        return str(uuid.UUID(invocation_id))
    except ValueError:
        return str(uuid.uuid5(_RUN_IDS, invocation_id))


def _dataset(cid: str) -> dict[str, Any]:
    return {"namespace": DATASET_NAMESPACE, "name": cid}


def _datasets(*cids: Any) -> list[dict[str, Any]]:
    unique = dict.fromkeys(c for c in cids if isinstance(c, str) and c)
    return [_dataset(cid) for cid in unique]


def _facet(schema_url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **fields}


def _present(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


class OpenLineageExport:
    """Turns records, in ledger order, into RunEvents (one per function record)."""

    def __init__(self, namespace: str = DEFAULT_NAMESPACE) -> None:
        if not namespace:
            raise ValueError("the OpenLineage namespace must not be empty")
        self.namespace = namespace
        self._versions: dict[str, str] = {}  # invocation id -> version, until it completes

    def events(self, records: Iterable[Record]) -> Iterator[dict[str, Any]]:
        for record in records:
            event = self.event(record)
            if event is not None:
                yield event

    def event(self, record: Record) -> dict[str, Any] | None:
        payload = record.payload
        invocation_id = payload.get("invocation_id")
        function_id = payload.get("function_id")
        if not isinstance(invocation_id, str) or not isinstance(function_id, str):
            return None
        if record.type == FUNCTION_INVOKED:
            version = payload.get("function_version")
            if isinstance(version, str):
                self._versions[invocation_id] = version
            return self._start(record, invocation_id, function_id, version)
        if record.type == FUNCTION_COMPLETED:
            version = self._versions.pop(invocation_id, None)
            return self._end(record, invocation_id, function_id, version)
        return None

    def event_alone(self, record: Record, version: str | None = None) -> dict[str, Any] | None:
        """The RunEvent of one record on its own, keeping nothing (a live sender meets
        the records of an invocation in any order): `version` is, for a
        FUNCTION_COMPLETED, the function version its FUNCTION_INVOKED recorded."""
        invocation_id = record.payload.get("invocation_id")
        if not isinstance(invocation_id, str):
            return None
        if version is not None and record.type == FUNCTION_COMPLETED:
            self._versions[invocation_id] = version
        try:
            return self.event(record)
        finally:
            self._versions.pop(invocation_id, None)

    def _job(self, function_id: str, version: Any) -> dict[str, Any]:
        facets: dict[str, Any] = {
            "jobType": _facet(
                JOB_TYPE_URL, processingType="BATCH", integration="GOVFN", jobType="FUNCTION"
            ),
        }
        if isinstance(version, str):
            facets["govfn_function"] = _facet(
                FUNCTION_FACET_URL, functionId=function_id, version=version
            )
        return {"namespace": self.namespace, "name": function_id, "facets": facets}

    def _start(
        self, record: Record, invocation_id: str, function_id: str, version: Any
    ) -> dict[str, Any]:
        p = record.payload
        chronicle = _facet(
            CHRONICLE_FACET_URL,
            **_present(
                recordCid=record.cid,
                eventCode=p.get("event_code"),
                invocationId=invocation_id,
                invokedCid=record.cid,
                triggerEventCid=p.get("trigger_event_cid"),
                inputCid=p.get("input_cid"),
                eventId=p.get("event_id"),
                eventSource=p.get("event_source"),
                gsapContextId=p.get("gsap_context_id"),
                traceparent=p.get("traceparent"),
                sender=p.get("sender"),
            ),
        )
        return {
            "eventType": "START",
            "eventTime": p.get("invoked_at"),
            "producer": PRODUCER,
            "schemaURL": SCHEMA_URL,
            "run": {"runId": run_id(invocation_id), "facets": {"govfn_chronicle": chronicle}},
            "job": self._job(function_id, version),
            "inputs": _datasets(p.get("trigger_event_cid"), p.get("input_cid")),
            "outputs": [],
        }

    def _end(
        self, record: Record, invocation_id: str, function_id: str, version: Any
    ) -> dict[str, Any]:
        p = record.payload
        success = p.get("success") is True
        facets: dict[str, Any] = {
            "govfn_chronicle": _facet(
                CHRONICLE_FACET_URL,
                **_present(
                    recordCid=record.cid,
                    eventCode=p.get("event_code"),
                    invocationId=invocation_id,
                    invokedCid=p.get("invoked_cid"),
                    completedCid=record.cid,
                    triggerEventCid=p.get("trigger_event_cid"),
                    outputCid=p.get("output_cid"),
                    replyCid=p.get("reply_cid"),
                    replyId=p.get("reply_id"),
                    replySource=p.get("reply_source"),
                    durationMs=p.get("duration_ms"),
                    errorKind=p.get("error_kind"),
                ),
            )
        }
        if not success:
            facets["errorMessage"] = _facet(
                ERROR_URL, message=_error_message(p), programmingLanguage="PYTHON"
            )
        return {
            "eventType": "COMPLETE" if success else "FAIL",
            "eventTime": p.get("completed_at"),
            "producer": PRODUCER,
            "schemaURL": SCHEMA_URL,
            "run": {"runId": run_id(invocation_id), "facets": facets},
            "job": self._job(function_id, version),
            "inputs": _datasets(p.get("trigger_event_cid")),
            "outputs": _datasets(p.get("output_cid"), p.get("reply_cid")) if success else [],
        }


def _error_message(payload: dict[str, Any]) -> str:
    """A handler's exception text stays in the server log, as in the management API."""
    kind = payload.get("error_kind") or "error"
    error = payload.get("error")
    if kind == "error" or not isinstance(error, str) or not error:
        return f"the function failed ({kind}); see the server log for this invocation id"
    return error
