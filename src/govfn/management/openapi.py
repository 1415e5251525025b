"""The OpenAPI 3.1 description of every route govfn serves.

`OPERATIONS` describes each operation; `openapi_document(routes)` keeps the paths of the
routes the app serves, and refuses a route without a description or a description of no
route, so the document and the routes cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from govfn.names import DNS1123_LABEL_MAX, DNS1123_LABEL_PATTERN

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_FUNCTION_ID = {
    "name": "function_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": DNS1123_LABEL_PATTERN, "maxLength": DNS1123_LABEL_MAX},
}
_CE_BODY = {
    "description": "A CloudEvent in binary (attributes in ce- headers, any media type), "
    "structured or batch content mode.",
    "required": True,
    "content": {
        "application/cloudevents+json": {"schema": {"$ref": "#/components/schemas/CloudEvent"}},
        "application/cloudevents-batch+json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/CloudEvent"}}
        },
        "*/*": {"schema": {}},
    },
}
_CE_RESPONSES = {
    "200": {"description": "The reply CloudEvent (binary mode) or a batch of replies."},
    "202": {"description": "Accepted; no reply event."},
    "400": _PROBLEM,
    "404": _PROBLEM,
    "409": _PROBLEM,
    "413": _PROBLEM,
    "415": _PROBLEM,
    "422": _PROBLEM,
    "429": _PROBLEM,
    "500": _PROBLEM,
    "503": _PROBLEM,
    "504": _PROBLEM,
}
_CID = {
    "name": "cid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,200}$"},
}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_REFUSED = {"401": _PROBLEM, "403": _PROBLEM}  # what guarded routes answer without the token
_LOCKED_PAGE = {"description": "HTML page asking for the token, without the graph"}


def _query(name: str) -> dict[str, Any]:
    required = name == "image"
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_RESULT = {"$ref": "#/components/schemas/FunctionResult"}
_DESCRIPTOR = {"$ref": "#/components/schemas/FunctionDescriptor"}
_CATALOGUE = {
    "type": "object",
    "properties": {
        "functions": {"type": "array", "items": _DESCRIPTOR},
        "count": {"type": "integer"},
    },
}

# path -> method -> operation, for every route of the app (receivers, health, management).
OPERATIONS: dict[str, dict[str, Any]] = {
    "/": {
        "post": {
            "summary": "Receiver (routed by type)",
            "requestBody": _CE_BODY,
            "responses": _CE_RESPONSES,
        }
    },
    "/functions/{function_id}/events": {
        "post": {
            "summary": "A function's receiver",
            "parameters": [_FUNCTION_ID],
            "requestBody": _CE_BODY,
            "responses": _CE_RESPONSES,
        }
    },
    "/functions/": {
        "get": {
            "summary": "Catalogue",
            "responses": {"200": _json(_CATALOGUE)},
        }
    },
    "/functions": {
        "get": {
            "summary": "Catalogue (as /functions/)",
            "responses": {"200": _json(_CATALOGUE)},
        }
    },
    "/functions/{function_id}": {
        "get": {
            "summary": "Descriptor",
            "parameters": [_FUNCTION_ID],
            "responses": {"200": _json(_DESCRIPTOR), "404": _PROBLEM},
        }
    },
    "/functions/{function_id}/invoke": {
        "post": {
            "summary": "Invoke directly (--dev or bearer token)",
            "parameters": [_FUNCTION_ID],
            "security": _BEARER,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"event": {}, "context": {"type": "object"}},
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "200": _json(_RESULT),
                **_REFUSED,
                "404": _PROBLEM,
                "422": _PROBLEM,
                "500": _PROBLEM,
            },
        }
    },
    "/functions/dispatch": {
        "post": {
            "summary": "Invoke every function triggered by an event kind",
            "security": _BEARER,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["event_kind"],
                            "properties": {
                                "event_kind": {"type": "string"},
                                "event_data": {},
                                "trigger_cid": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "event_kind": {"type": "string"},
                            "results": {"type": "array", "items": _RESULT},
                        },
                    }
                ),
                **_REFUSED,
            },
        }
    },
    "/functions/{function_id}/manifest": {
        "get": {
            "summary": "Knative Service and Triggers as YAML",
            "parameters": [_FUNCTION_ID, *map(_query, ("image", "namespace", "broker"))],
            "responses": {
                "200": {
                    "description": "YAML",
                    "content": {"application/yaml": {"schema": {"type": "string"}}},
                },
                "400": _PROBLEM,
                "404": _PROBLEM,
                "501": _PROBLEM,
            },
        }
    },
    "/health": {"get": {"summary": "Health", "responses": {"200": _json({"type": "object"})}}},
    "/health/": {
        "get": {"summary": "Health (as /health)", "responses": {"200": _json({"type": "object"})}}
    },
    "/health/liveness": {
        "get": {"summary": "Liveness", "responses": {"200": _json({"type": "object"})}}
    },
    "/health/readiness": {
        "get": {
            "summary": "Readiness (false while starting/draining)",
            "responses": {
                "200": _json({"type": "object"}),
                "503": _json({"type": "object"}),
            },
        }
    },
    "/chronicle/lineage/{cid}": {
        "get": {
            "summary": "Lineage graph of a CID (record, trigger event, output, reply) "
            "or an invocation id: where it came from and what it led to "
            "(--dev or bearer token)",
            "parameters": [_CID],
            "security": _BEARER,
            "responses": {
                "200": _json({"$ref": "#/components/schemas/LineageGraph"}),
                "400": _PROBLEM,
                **_REFUSED,
                "404": _PROBLEM,
            },
        }
    },
    "/chronicle/lineage/{cid}/view": {
        "get": {
            "summary": "A page that draws the lineage graph (self-contained HTML and SVG); "
            "without --dev or the bearer token it asks for the token and fetches the graph",
            "parameters": [_CID],
            "security": _BEARER,
            "responses": {
                "200": {
                    "description": "HTML page",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                "400": {"description": "HTML page naming the problem"},
                **dict.fromkeys(("401", "403"), _LOCKED_PAGE),
                "404": {"description": "HTML page naming the problem"},
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {
                "200": {
                    "description": "text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/openapi.json": {
        "get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}
    },
}

_COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "responses": {
        "Problem": {
            "description": "RFC 9457 problem details",
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    },
    "schemas": {
        "Problem": {
            "type": "object",
            "required": ["title", "status"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "attribute": {"type": "string"},
                "invocation_id": {"type": "string"},
            },
        },
        "CloudEvent": {
            "type": "object",
            "required": ["specversion", "id", "source", "type"],
            "properties": {
                "specversion": {"const": "1.0"},
                "id": {"type": "string", "minLength": 1},
                "source": {"type": "string", "minLength": 1},
                "type": {"type": "string", "minLength": 1},
                "data": {},
                "data_base64": {"type": "string"},
            },
        },
        "FunctionDescriptor": {
            "type": "object",
            "properties": {
                "spec": {"type": "string"},
                "function_id": {"type": "string"},
                "version": {"type": "string"},
                "trigger_events": {"type": "array", "items": {"type": "string"}},
                "emits": {"type": "array", "items": {"type": "string"}},
                "gsap_required": {"type": "boolean"},
                "descriptor_cid": {"type": "string"},
            },
        },
        "LineageGraph": {
            "type": "object",
            "required": ["root", "query", "nodes", "edges", "truncated"],
            "properties": {
                "root": {"type": "string", "description": "the node the query named"},
                "query": {"type": "string"},
                "truncated": {"type": "boolean"},
                "nodes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "kind", "label"],
                        "properties": {
                            "id": {"type": "string", "description": "record or content CID"},
                            "kind": {
                                "enum": [
                                    "event",
                                    "invoked",
                                    "completed",
                                    "failed",
                                    "output",
                                    "reply",
                                ]
                            },
                            "label": {"type": "string"},
                        },
                    },
                },
                "edges": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["from", "to", "label"],
                        "properties": {
                            "from": {"type": "string"},
                            "to": {"type": "string"},
                            "label": {
                                "enum": ["triggered", "input", "completed", "output", "reply data"]
                            },
                            "via": {"enum": ["reply", "content"]},
                        },
                    },
                },
            },
        },
        "FunctionResult": {
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "data": {},
                "error": {"type": ["string", "null"]},
                "error_kind": {"type": ["string", "null"]},
                "duration_ms": {"type": "number"},
                "lineage_cid": {"type": ["string", "null"]},
                "output_cid": {"type": ["string", "null"]},
                "function_id": {"type": ["string", "null"]},
                "invocation_id": {"type": ["string", "null"]},
                "reply_type": {"type": ["string", "null"]},
            },
        },
    },
}


def openapi_document(routes: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The document for `routes`, (method, path) pairs with OpenAPI path templates
    (`/functions/{function_id}`). ValueError names a route without a description, or a
    description of no route."""
    wanted: dict[str, set[str]] = {}
    for method, path in routes:
        wanted.setdefault(path, set()).add(method.lower())
    undescribed = sorted(
        f"{method.upper()} {path}"
        for path, methods in wanted.items()
        for method in methods - set(OPERATIONS.get(path, {}))
    )
    unrouted = sorted(
        f"{method.upper()} {path}"
        for path, operations in OPERATIONS.items()
        for method in set(operations) - wanted.get(path, set())
    )
    if undescribed or unrouted:
        raise ValueError(
            f"OpenAPI and routes differ: undescribed {undescribed}, unrouted {unrouted}"
        )
    paths = {path: OPERATIONS[path] for path in sorted(wanted, key=list(OPERATIONS).index)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "govfn", "version": "0.1.0"},
        "paths": paths,
        "components": _COMPONENTS,
    }


def openapi_path(rule: str) -> str:
    """A Werkzeug rule (`/functions/<function_id>`, `/x/<int:n>`) as an OpenAPI path."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
