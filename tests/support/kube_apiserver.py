"""A real kube-apiserver on a real etcd, on loopback, as controller-runtime's envtest runs them.

`KubeApiServer` starts Debian's `etcd` and the `kube-apiserver` that `make apiserver` unpacks
into `.tools/bin/` (from `../shared/bin/kube-apiserver.xz`, beside the repository) in a
temporary directory, each on free 127.0.0.1 ports:

    server = KubeApiServer.from_project().start()   # etcd, apiserver, the Knative CRDs
    server.write_kubeconfig(path, user="deployer", namespace="fns")
    server.client()                                  # a kubernetes.client.ApiClient (admin)
    server.kubectl("get", "crd")                    # .tools/bin/kubectl as admin
    server.stop()                                    # both processes, by pid; the directory

Users come from a token file (`--token-auth-file`): `admin` (group `system:masters`) and
`deployer` (no group: only what RBAC grants it). Service accounts get tokens from the
TokenRequest API (`service_account_token`), signed with a key made here; the issuer is
`https://kubernetes.default.svc.cluster.local`, as in a cluster. What is not here: Knative's
controllers and webhooks, kube-controller-manager (a namespace is never deleted), kubelet.
Every wait is bounded; only the processes this object started are ever stopped.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support.postgres import free_port

REPO = Path(__file__).resolve().parent.parent.parent
BINARY = REPO / ".tools" / "bin" / "kube-apiserver"
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
CRDS = REPO / "tests" / "manifest" / "crds"  # the vendored Knative CRDs (their README: digests)
ISSUER = "https://kubernetes.default.svc.cluster.local"
USERS = {"admin": "system:masters", "deployer": ""}  # name -> groups
_START_TIMEOUT_S = 60
_COMMAND_TIMEOUT_S = 60
_START_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


def missing_parts() -> str | None:
    """Why a real API server cannot be started here, or None."""
    if not BINARY.is_file():
        return (
            f"{BINARY.relative_to(REPO)} is absent: `make apiserver` unpacks it from "
            "../shared/bin/kube-apiserver.xz (make test does; that file must be beside the repo)"
        )
    if shutil.which("etcd") is None:
        return (
            "etcd is not installed: `make apiserver` installs Debian's etcd-server (make test does)"
        )
    if not KUBECTL.is_file():
        return "kubectl is absent: run `make .tools/bin/helm` (make test does)"
    return None


@dataclass(frozen=True)
class IssuerEndpoints:
    """Where a pod reads the service-account issuer's discovery document and keys."""

    discovery_url: str  # https://127.0.0.1:PORT/.well-known/openid-configuration
    ca_file: Path  # the API server's serving CA (a pod's ca.crt)
    issuer: str  # the `iss` of every token (not the URL discovered from)


class KubeApiServer:
    """etcd + kube-apiserver in one temporary directory (see the module docstring)."""

    def __init__(self, binary: Path, etcd: Path, kubectl: Path) -> None:
        self.binary, self.etcd_binary, self.kubectl_binary = binary, etcd, kubectl
        self.root = Path(tempfile.mkdtemp(prefix="govfn-kube-"))
        self.tokens = {user: uuid.uuid4().hex for user in USERS}
        self.port = 0
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._admin: Any = None  # kubernetes.client.ApiClient, made on first use

    @classmethod
    def from_project(cls) -> KubeApiServer:
        reason = missing_parts()
        if reason:
            raise RuntimeError(reason)
        return cls(BINARY, Path(shutil.which("etcd") or "etcd"), KUBECTL)

    # -- the processes ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The self-signed serving certificate kube-apiserver made in --cert-dir (its own CA)."""
        return self.root / "certs" / "apiserver.crt"

    def start(self) -> KubeApiServer:
        self._write_keys_and_tokens()
        for attempt in range(_START_ATTEMPTS):  # a free port can be taken before it is bound
            try:
                self._start_etcd()
                self._start_apiserver()
                break
            except _PortTaken:
                self._stop_processes()
                if attempt == _START_ATTEMPTS - 1:
                    raise
        for user in USERS:  # admin.kubeconfig, deployer.kubeconfig (namespace default)
            self.write_kubeconfig(self.root / f"{user}.kubeconfig", user=user)
        self.install_crds(CRDS)
        return self

    def _write_keys_and_tokens(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.root / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        (self.root / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        lines = [
            f'{self.tokens[user]},{user},uid-{user},"{groups}"' for user, groups in USERS.items()
        ]
        (self.root / "tokens.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _spawn(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps it)
        try:
            return subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        data = self.root / "etcd"
        shutil.rmtree(data, ignore_errors=True)
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._etcd = self._spawn(
            "etcd",
            [
                str(self.etcd_binary),
                "--name=t",
                f"--data-dir={data}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=t=http://127.0.0.1:{peer}",
            ],
        )
        self._await("etcd", self._etcd, lambda: _http_ok(f"{self.etcd_url}/health"))

    def _start_apiserver(self) -> None:
        self.port = free_port()
        self._apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.binary),
                f"--etcd-servers={self.etcd_url}",
                f"--secure-port={self.port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--cert-dir={self.root / 'certs'}",
                f"--token-auth-file={self.root / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={self.root / 'sa.pub'}",
                f"--service-account-signing-key-file={self.root / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
            ],
        )
        self._await("kube-apiserver", self._apiserver, self._ready)

    def _ready(self) -> bool:
        if not self.ca_file.exists():
            return False
        return _http_ok(f"{self.url}/readyz", token=self.tokens["admin"], ca_file=self.ca_file)

    def _await(self, name: str, process: subprocess.Popen[bytes], ready: Any) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = self.log_tail(name)
                if "address already in use" in log:
                    raise _PortTaken(name)
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{log}")
            if ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready after {_START_TIMEOUT_S}s:\n{self.log_tail(name)}")

    def _stop_processes(self) -> None:
        for process in (self._apiserver, self._etcd):  # the apiserver first: it writes to etcd
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        self._apiserver = self._etcd = None

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (each by its pid), and remove the directory."""
        try:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
            self._stop_processes()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.root / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- clients ------------------------------------------------------------------------

    def write_kubeconfig(
        self,
        path: Path,
        *,
        user: str = "admin",
        namespace: str = "default",
        token: str | None = None,
        server: str | None = None,
        contexts: dict[str, str] | None = None,
    ) -> Path:
        """A kubeconfig for `user` (or a given `token`), its current context in `namespace`;
        `contexts` adds more (name -> namespace)."""
        named = {"apiserver": namespace, **(contexts or {})}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "apiserver",
                    "cluster": {
                        "server": server or self.url,
                        "certificate-authority": str(self.ca_file),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token or self.tokens[user]}}],
            "contexts": [
                {
                    "name": name,
                    "context": {"cluster": "apiserver", "user": user, "namespace": ns},
                }
                for name, ns in named.items()
            ],
            "current-context": "apiserver",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def client(self, user: str = "admin", token: str | None = None) -> Any:
        """A kubernetes.client.ApiClient for `user` (close it when done)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.api_key = {"authorization": f"Bearer {token or self.tokens[user]}"}
        return client.ApiClient(configuration)

    def tool_env(self) -> dict[str, str]:
        """The environment for kubectl and helm: caches and config in this directory."""
        home = self.root / "home"
        return {
            **os.environ,
            "HOME": str(home),
            "KUBECACHEDIR": str(home / "kube-cache"),
            "HELM_CACHE_HOME": str(home / "helm-cache"),
            "HELM_CONFIG_HOME": str(home / "helm-config"),
            "HELM_DATA_HOME": str(home / "helm-data"),
        }

    def kubectl(
        self, *args: str, input: str | None = None, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run .tools/bin/kubectl (as admin unless given a kubeconfig); never raises."""
        config = kubeconfig or self.root / "admin.kubeconfig"
        return subprocess.run(
            [str(self.kubectl_binary), "--kubeconfig", str(config), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            env=self.tool_env(),
        )

    def must(self, *args: str, input: str | None = None) -> str:
        done = self.kubectl(*args, input=input)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    # -- what tests set up --------------------------------------------------------------

    def install_crds(self, folder: Path, names: Sequence[str] = ()) -> None:
        """kubectl apply the CRD files in `folder` (or only `names`), then wait until every
        CRD is Established."""
        files = [folder / name for name in names] or sorted(folder.glob("*.yaml"))
        self.must("apply", *(f"--filename={file}" for file in files))
        self.must("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")

    def core(self) -> Any:
        """A CoreV1Api as admin, for the setup steps (faster than a kubectl process each)."""
        from kubernetes import client

        if self._admin is None:
            self._admin = self.client("admin")
        return client.CoreV1Api(self._admin)

    def create_namespace(self, name: str) -> str:
        self.core().create_namespace({"metadata": {"name": name}})
        return name

    def service_account_token(
        self, namespace: str, name: str, audience: str | None = None, duration_s: int = 600
    ) -> str:
        """Create the ServiceAccount (when missing) and return a token for it from the
        TokenRequest API, as Knative's broker gets one (`kubectl create token NAME
        --audience AUD`); without an audience, one for the API server itself (a pod's)."""
        from kubernetes.client.exceptions import ApiException

        core = self.core()
        try:
            core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:  # AlreadyExists
                raise
        spec: dict[str, Any] = {"expirationSeconds": duration_s}
        if audience:
            spec["audiences"] = [audience]
        answer = core.create_namespaced_service_account_token(name, namespace, {"spec": spec})
        return str(answer.status.token)

    def may(self, user: str, namespace: str, verb: str, group: str, resource: str) -> bool:
        """What the authorizer answers now (a SubjectAccessReview)."""
        from kubernetes import client

        review = {
            "spec": {
                "user": user,
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                },
            }
        }
        self.core()  # makes the admin client
        answer = client.AuthorizationV1Api(self._admin).create_subject_access_review(review)
        return bool(answer.status.allowed)

    def issuer(self) -> IssuerEndpoints:
        return IssuerEndpoints(
            discovery_url=f"{self.url}/.well-known/openid-configuration",
            ca_file=self.ca_file,
            issuer=ISSUER,
        )

    def get_json(self, path: str, token: str | None = None) -> tuple[int, Any]:
        """GET `path` over HTTPS (anonymous without a token): (status, parsed body)."""
        url = path if path.startswith("https://") else f"{self.url}{path}"
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read() or b"null")


class _PortTaken(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG), so that no server outlives a killed test run (kube-apiserver would not
    finish a graceful shutdown once etcd has gone)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _libc_prctl() -> Any:
    """prctl(2), looked up in the parent: a child of a threaded process should not dlopen."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _libc_prctl()


def _http_ok(url: str, token: str | None = None, ca_file: Path | None = None) -> bool:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as answer:
            return bool(answer.status == 200)
    except (OSError, ssl.SSLError):
        return False
