"""The benchmark event: a binary-mode CloudEvent with a 200-byte JSON body, and its wrk script.

Every server gets the same request: POST, ce-specversion/ce-type/ce-source/ce-id headers,
`Content-Type: application/json`, a body of exactly `BODY_SIZE` bytes. Under wrk, each
request carries its own ce-id (a counter per wrk thread), as CloudEvents from one source must.
"""

from __future__ import annotations

import json
from pathlib import Path

BODY_SIZE = 200
EVENT_TYPE = "ECHO_REQUESTED"
EVENT_SOURCE = "/benchmarks/wrk"


def body() -> bytes:
    """A JSON object padded to exactly BODY_SIZE bytes."""
    document = {"order": 4711, "customer": "bench", "items": [1, 2, 3], "note": ""}
    pad = BODY_SIZE - len(json.dumps(document, separators=(",", ":")))
    document["note"] = "x" * pad
    encoded = json.dumps(document, separators=(",", ":")).encode()
    assert len(encoded) == BODY_SIZE, len(encoded)
    return encoded


def headers(event_id: str = "bench-0") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-type": EVENT_TYPE,
        "ce-source": EVENT_SOURCE,
        "ce-id": event_id,
    }


_WRK_SCRIPT = """-- written by benchmarks/event.py: the benchmark CloudEvent, one ce-id per request
local counter = 0
local next_thread = 0

-- thread_id is a global that setup() gives each thread's own Lua state
function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end

wrk.method = "POST"
wrk.body = {body}
{header_lines}

function request()
  counter = counter + 1
  wrk.headers["ce-id"] = "bench-" .. (thread_id or 0) .. "-" .. counter
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string literal


def write_wrk_script(path: Path) -> Path:
    """Write the wrk Lua script that posts the benchmark event and prints a JSON summary."""
    header_lines = "\n".join(
        f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}"
        for name, value in headers().items()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        _WRK_SCRIPT.format(body=_lua_string(body().decode()), header_lines=header_lines)
    )
    return path
