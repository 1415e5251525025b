"""A double of the Kubernetes API server: the wire protocol `govfn apply` uses, nothing more.

A real HTTP server on 127.0.0.1 (in a thread) that answers like kube-apiserver for
Knative Services, Triggers, Brokers, SinkBindings and EventTypes (v1beta2; the rest v1):

- discovery: `GET /api`, `GET /apis`, `GET /apis/<group>/<version>`;
- server-side apply: `PATCH .../namespaces/<ns>/<plural>/<name>` with
  `Content-Type: application/apply-patch+yaml` (else 415), `fieldManager` required,
  `force` needed to take fields from another manager (else 409), `dryRun=All` honoured;
  bodies are validated against the vendored CRD schemas made strict (else 422), always,
  as under `fieldValidation=Strict` (a real server with `Ignore` would drop unknown fields);
- `GET` one object (404 `Status` when missing), `GET` a list with `labelSelector`;
- `DELETE` (with `dryRun=All`);
- bearer-token authentication (401 otherwise);
- HTTPS when given a certificate and key, as a pod's service account reaches it.

Objects become Ready after `ready_after` GETs (never when it is None), so `--wait` can be
tested both ways; `failures` makes a request of a method on a resource answer an error
status. It does not run Knative's controllers or webhooks. Everything else about `govfn
apply` is tested against a real kube-apiserver (`test_apiserver_*.py`): this double is kept
for what a real server cannot be made to do, such as answering 500.
"""

from __future__ import annotations

import copy
import json
import ssl
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from govfn_manifest_schemas import schema_errors

APPLY_PATCH = "application/apply-patch+yaml"
RESOURCES = {
    "serving.knative.dev": {"services": ("Service", "service")},
    "eventing.knative.dev": {
        "triggers": ("Trigger", "trigger"),
        "brokers": ("Broker", "broker"),
        "eventtypes": ("EventType", "eventtype"),
    },
    "sources.knative.dev": {"sinkbindings": ("SinkBinding", "sinkbinding")},
}
SHORT_NAMES = {"services": ["kservice", "ksvc"]}
VERSIONS = {"eventtypes": "v1beta2"}  # plural -> its version, where it is not v1


def versions_of(plurals: dict[str, tuple[str, str]]) -> list[str]:
    """The versions a group serves, the preferred (v1) first."""
    return sorted({VERSIONS.get(plural, "v1") for plural in plurals}, key=lambda v: v != "v1")


VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str | None


@dataclass
class ApiServerState:
    token: str | None = field(default_factory=lambda: uuid.uuid4().hex)  # None: no auth
    groups: dict[str, dict[str, tuple[str, str]]] = field(
        default_factory=lambda: copy.deepcopy(RESOURCES)
    )
    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    managers: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    gets: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    ready_after: int | None = 1
    failures: dict[tuple[str, str], int] = field(default_factory=dict)  # (method, plural)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seed(self, obj: dict[str, Any], namespace: str, manager: str = "govfn") -> None:
        group = obj["apiVersion"].split("/")[0]
        plural = next(p for p, (k, _) in self.groups[group].items() if k == obj["kind"])
        stored = copy.deepcopy(obj)
        stored["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), generation=1)
        key = (group, namespace, plural, obj["metadata"]["name"])
        self.objects[key] = stored
        self.managers[key] = manager


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }


def matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def state(self) -> ApiServerState:
        return self.server.state

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.state.lock:
            self.state.requests.append(
                Request(method, url.path, query, self.headers.get("Content-Type"))
            )
            scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
            if self.state.token and (  # the scheme is case-insensitive (RFC 9110 11.1)
                scheme.lower() != "bearer" or credentials != self.state.token
            ):
                self._send(401, status(401, "Unauthorized", "Unauthorized"))
                return
            code, answer = self.route(method, url.path.strip("/").split("/"), query, body)
        self._send(code, answer)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def route(
        self, method: str, parts: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET" and parts == ["api"]:
            return 200, {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [],
            }
        if method == "GET" and parts == ["api", "v1"]:  # no core resources are served
            return 200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": []}
        if method == "GET" and parts == ["apis"]:
            return 200, {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": group,
                        "versions": [
                            {"groupVersion": f"{group}/{version}", "version": version}
                            for version in versions_of(plurals)
                        ],
                        "preferredVersion": {"groupVersion": f"{group}/v1", "version": "v1"},
                    }
                    for group, plurals in sorted(self.state.groups.items())
                ],
            }
        if parts[0] != "apis" or len(parts) < 3 or parts[1] not in self.state.groups:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        group, version = parts[1], parts[2]
        if version not in versions_of(self.state.groups[group]):
            return 404, status(404, "NotFound", f"{group}/{version} is not served")
        if len(parts) == 3:
            if method != "GET":
                return 405, status(405, "MethodNotAllowed", "method not allowed")
            return 200, {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}",
                "resources": [
                    {
                        "name": plural,
                        "singularName": singular,
                        "namespaced": True,
                        "kind": kind,
                        "verbs": VERBS,
                        "shortNames": SHORT_NAMES.get(plural, []),
                    }
                    for plural, (kind, singular) in sorted(self.state.groups[group].items())
                    if VERSIONS.get(plural, "v1") == version
                ],
            }
        if len(parts) not in (6, 7) or parts[3] != "namespaces":
            return 404, status(404, "NotFound", "unsupported path")
        namespace, plural = parts[4], parts[5]
        if plural not in self.state.groups[group] or VERSIONS.get(plural, "v1") != version:
            return 404, status(404, "NotFound", f"no resource {plural} in {group}/{version}")
        kind = self.state.groups[group][plural][0]
        if len(parts) == 6:
            if method != "GET":
                return 405, status(405, "MethodNotAllowed", f"{method} on a collection")
            return 200, self.list(group, namespace, plural, kind, query)
        name = parts[6]
        if "dryRun" in query and query["dryRun"] != "All":
            return 400, status(400, "BadRequest", f"invalid dryRun {query['dryRun']!r}")
        key = (group, namespace, plural, name)
        failure = self.state.failures.get((method, plural))
        if failure is not None:
            return failure, status(failure, "InternalError", f"{method} {plural}: injected")
        if method == "GET":
            return self.get(key, kind)
        if method == "PATCH":
            return self.apply(key, kind, query, body)
        if method == "DELETE":
            if key not in self.state.objects:
                return 404, status(404, "NotFound", f'{plural}.{group} "{name}" not found')
            if query.get("dryRun") != "All":
                del self.state.objects[key]
            return 200, status(200, "", "deleted")
        return 405, status(405, "MethodNotAllowed", f"{method} is not supported by the double")

    def list(
        self, group: str, namespace: str, plural: str, kind: str, query: dict[str, str]
    ) -> dict[str, Any]:
        selector = query.get("labelSelector", "")
        items = [
            obj
            for (g, ns, p, _), obj in sorted(self.state.objects.items())
            if (g, ns, p) == (group, namespace, plural)
            and matches(obj["metadata"].get("labels", {}), selector)
        ]
        return {
            "apiVersion": f"{group}/{VERSIONS.get(plural, 'v1')}",
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": "1"},
            "items": items,
        }

    def get(self, key: tuple[str, str, str, str], kind: str) -> tuple[int, dict[str, Any]]:
        obj = self.state.objects.get(key)
        if obj is None:
            return 404, status(404, "NotFound", f'{key[2]}.{key[0]} "{key[3]}" not found')
        count = self.state.gets[key] = self.state.gets.get(key, 0) + 1
        ready = self.state.ready_after is not None and count >= self.state.ready_after
        obj["status"] = {
            "observedGeneration": obj["metadata"]["generation"],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "Unknown",
                    **({} if ready else {"reason": "RevisionMissing"}),
                }
            ],
        }
        return 200, obj

    def apply(
        self, key: tuple[str, str, str, str], kind: str, query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        group, namespace, plural, name = key
        if self.headers.get("Content-Type") != APPLY_PATCH:
            return 415, status(415, "UnsupportedMediaType", "expected an apply patch")
        manager = query.get("fieldManager")
        if not manager:
            return 422, status(
                422, "Invalid", "fieldManager: Required value: is required for apply patch"
            )
        try:
            obj = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            return 400, status(400, "BadRequest", f"invalid YAML: {exc}")
        if not isinstance(obj, dict):
            return 400, status(400, "BadRequest", "body is not an object")
        metadata = obj.get("metadata") or {}
        if (
            obj.get("kind") != kind
            or obj.get("apiVersion") != f"{group}/{VERSIONS.get(plural, 'v1')}"
        ):
            return 400, status(
                400, "BadRequest", f"body is {obj.get('apiVersion')}/{obj.get('kind')}"
            )
        if metadata.get("name") != name or metadata.get("namespace", namespace) != namespace:
            return 400, status(400, "BadRequest", "name or namespace does not match the URL")
        errors = schema_errors(obj)
        if errors:
            message = f'{kind}.{group} "{name}" is invalid: ' + "; ".join(errors)
            return 422, status(422, "Invalid", message)
        existing = self.state.objects.get(key)
        owner = self.state.managers.get(key)
        if existing is not None and owner != manager and query.get("force") != "true":
            return 409, status(
                409, "Conflict", f"Apply failed with 1 conflict: conflict with {owner!r}"
            )
        generation = 1
        if existing is not None:
            generation = existing["metadata"]["generation"]
            if existing.get("spec") != obj.get("spec"):
                generation += 1
        stored = copy.deepcopy(obj)
        stored["metadata"].update(
            namespace=namespace,
            uid=(existing or {}).get("metadata", {}).get("uid", str(uuid.uuid4())),
            generation=generation,
            managedFields=[{"manager": manager, "operation": "Apply"}],
        )
        if query.get("dryRun") != "All":
            self.state.objects[key] = stored
            self.state.managers[key] = manager
            self.state.gets.pop(key, None)
        return (200 if existing else 201), stored


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ApiServerState, tls: tuple[Path, Path] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state
        self.scheme = "http"
        if tls is not None:  # (certificate, key)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.serve_forever, name="apiserver-double")

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)

    def write_kubeconfig(self, path: Path, namespace: str = "functions") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [
                {"name": "govfn", "user": {"token": self.state.token} if self.state.token else {}}
            ],
            "contexts": [
                {
                    "name": "double",
                    "context": {"cluster": "double", "user": "govfn", "namespace": namespace},
                },
                {
                    "name": "other-namespace",
                    "context": {"cluster": "double", "user": "govfn", "namespace": "other"},
                },
            ],
            "current-context": "double",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path


# `kubectl apply` as govfn's docs give it, with the CRDs' schemas left to the server.
KUBECTL_APPLY = (
    "apply",
    "--server-side",
    "--field-manager",
    "govfn",
    "--validate=false",
    "-f",
    "-",
)


def run_kubectl(
    kubectl: Path, kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real kubectl against a double's kubeconfig, its output as text."""
    return subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
