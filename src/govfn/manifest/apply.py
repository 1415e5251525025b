"""`govfn apply`: server-side apply of rendered objects through the Kubernetes API.

This is the only module that imports the `kubernetes` package (the `apply` extra), and
only once `connect()` has run, so rendering manifests never pays for it. Steps:

1. discovery: `/apis/<group>/<version>` must list services (Knative Serving), triggers
   and sinkbindings (Knative Eventing), else the error says which is missing;
2. apply: one PATCH per object, `application/apply-patch+yaml`, `fieldManager=govfn`,
   `force=true`, and `dryRun=All` for `--dry-run`;
3. prune: list this app's govfn-managed Triggers, SinkBindings and Services by label and
   delete those no longer rendered (Services last, so nothing points at a deleted one);
4. wait: poll each object until its `Ready` condition is True, or the timeout.

When the kubeconfig turns TLS verification off (`insecure-skip-tls-verify: true`), one line
says so and urllib3's InsecureRequestWarning (one per request) is silenced for these calls.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govfn.manifest.errors import ManifestError

FIELD_MANAGER = "govfn"
APPLY_PATCH = "application/apply-patch+yaml"
KINDS = {  # kind -> (group, version, plural); plural is confirmed by discovery
    "Service": ("serving.knative.dev", "v1", "services"),
    "Trigger": ("eventing.knative.dev", "v1", "triggers"),
    "Broker": ("eventing.knative.dev", "v1", "brokers"),
    "SinkBinding": ("sources.knative.dev", "v1", "sinkbindings"),
    "EventType": ("eventing.knative.dev", "v1beta2", "eventtypes"),  # --event-types
}
PRUNE_ORDER = ("Trigger", "SinkBinding", "Service")
ROLE_HINT = (
    "govfn apply needs get, list, create, patch and delete on services.serving.knative.dev, "
    "triggers.eventing.knative.dev and sinkbindings.sources.knative.dev in the namespace "
    "(the chart's rbac.create renders that Role)"
)


class ApplyError(ManifestError):
    """The cluster refused or did not answer; `field` names the object or step."""


@dataclass(frozen=True, slots=True)
class Target:
    kubeconfig: str | None = None
    context: str | None = None


SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def connect(target: Target, service_account: Path = SERVICE_ACCOUNT) -> tuple[Any, str]:
    """An ApiClient and the namespace of the current context; without a kubeconfig, the
    pod's service account (token, CA and namespace files in `service_account`)."""
    try:
        import kubernetes  # noqa: F401  (an extra: `pip install 'govfn[apply]'`)
    except ImportError:
        raise ApplyError(
            "kubernetes", "govfn apply needs the Kubernetes client: pip install 'govfn[apply]'"
        ) from None
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # the loaders are untyped

    try:
        api = config.new_client_from_config(
            config_file=target.kubeconfig, context=target.context, persist_config=False
        )
        contexts, active = config.list_kube_config_contexts(config_file=target.kubeconfig)
        by_name = {entry["name"]: entry for entry in contexts}
        chosen = by_name.get(target.context, active) if target.context else active
        namespace = chosen.get("context", {}).get("namespace") or "default"
        return api, namespace
    except (ConfigException, FileNotFoundError) as exc:
        if target.kubeconfig or target.context:
            raise ApplyError("--kubeconfig", f"cannot load the kubeconfig: {exc}") from None
    return _in_cluster(service_account)


def _in_cluster(service_account: Path) -> tuple[Any, str]:
    from kubernetes import client
    from kubernetes.config import incluster_config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    untyped: Any = incluster_config
    loader = untyped.InClusterConfigLoader(
        token_filename=str(service_account / "token"),
        cert_filename=str(service_account / "ca.crt"),
    )
    try:
        loader.load_and_set(configuration)
    except ConfigException as exc:
        raise ApplyError("--kubeconfig", f"no kubeconfig and not in a cluster: {exc}") from None
    try:
        namespace = (service_account / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        namespace = ""
    return client.ApiClient(configuration), namespace or "default"


class Applier:
    """Apply, prune and wait for one namespace's govfn objects of one app."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        echo: Callable[[str], None] = print,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.echo = echo
        self.warn = warn or (lambda line: print(line, file=sys.stderr))
        self.plurals: dict[str, str] = {}
        configuration = getattr(api_client, "configuration", None)
        self.insecure = getattr(configuration, "verify_ssl", True) is False
        self._warned = False

    @contextmanager
    def _unverified_quietly(self) -> Iterator[None]:
        """Without TLS verification: say so once, and not once per request as urllib3 does."""
        if not self.insecure:
            yield
            return
        from urllib3.exceptions import InsecureRequestWarning

        if not self._warned:
            self._warned = True
            self.warn(
                "Warning: TLS verification is off (insecure-skip-tls-verify in the kubeconfig): "
                "the API server's certificate is not checked"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureRequestWarning)
            yield

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            with self._unverified_quietly():
                return fn(*args, **kwargs)
        except ApiException as exc:
            message = f"HTTP {exc.status}: {_status_message(exc)}"
            if exc.status == 403:  # the server does not always name the verb (create in an apply)
                message = f"{message.rstrip(': ')}; {ROLE_HINT}"
            raise ApplyError(what, message) from None
        except (HTTPError, OSError) as exc:
            raise ApplyError(what, f"cannot reach the API server: {exc}") from None

    def discover(self, kinds: Iterable[str]) -> None:
        from kubernetes import client

        wanted = set(kinds) - set(self.plurals)
        needed = [kind for kind in KINDS if kind in wanted]  # Serving first, then Eventing
        if not needed:
            return
        groups = self._call("discovery /apis", client.ApisApi(self.api.api_client).get_api_versions)
        served = {version.group_version for group in groups.groups for version in group.versions}
        for kind in needed:
            group, version, plural = KINDS[kind]
            if f"{group}/{version}" not in served:
                raise ApplyError(
                    "discovery /apis",
                    f"the cluster does not serve {group}/{version}; is Knative "
                    f"{'Serving' if group.startswith('serving') else 'Eventing'} installed?",
                )
            resources = self._call(
                f"discovery {group}/{version}", self.api.get_api_resources, group, version
            )
            names = {resource.name: resource for resource in resources.resources}
            if plural not in names or names[plural].kind != kind:
                raise ApplyError(
                    f"discovery {group}/{version}",
                    f"the cluster does not serve {kind} ({plural}); is Knative installed?",
                )
            self.plurals[kind] = plural

    def apply(self, objects: Iterable[Mapping[str, Any]], *, dry_run: bool) -> None:
        objects = list(objects)
        self.discover(obj["kind"] for obj in objects)
        for obj in objects:
            group, version, _ = KINDS[obj["kind"]]
            name = obj["metadata"]["name"]
            body = {**obj, "metadata": {**obj["metadata"], "namespace": self.namespace}}
            self._call(
                f"{obj['kind']} {name!r}",
                self.api.patch_namespaced_custom_object,
                group,
                version,
                self.namespace,
                self.plurals[obj["kind"]],
                name,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                dry_run="All" if dry_run else None,
                _content_type=APPLY_PATCH,
            )
            self.echo(f"{obj['kind'].lower()}/{name} applied{' (dry run)' if dry_run else ''}")

    def prune(self, objects: Iterable[Mapping[str, Any]], app: str, *, dry_run: bool) -> list[str]:
        keep = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
        selector = f"app.kubernetes.io/managed-by=govfn,app.kubernetes.io/part-of={app}"
        self.discover(PRUNE_ORDER)
        deleted = []
        for kind in PRUNE_ORDER:
            group, version, _ = KINDS[kind]
            listing = self._call(
                f"list {kind}",
                self.api.list_namespaced_custom_object,
                group,
                version,
                self.namespace,
                self.plurals[kind],
                label_selector=selector,
            )
            for item in sorted(listing.get("items", []), key=lambda i: i["metadata"]["name"]):
                name = item["metadata"]["name"]
                if (kind, name) in keep:
                    continue
                self._call(
                    f"{kind} {name!r}",
                    self.api.delete_namespaced_custom_object,
                    group,
                    version,
                    self.namespace,
                    self.plurals[kind],
                    name,
                    dry_run="All" if dry_run else None,
                )
                deleted.append(f"{kind.lower()}/{name}")
                self.echo(f"{kind.lower()}/{name} pruned{' (dry run)' if dry_run else ''}")
        return deleted

    def wait(
        self, objects: Iterable[Mapping[str, Any]], timeout: float, max_interval: float = 2.0
    ) -> None:
        """Poll every object until Ready, backing off from 0.1 s to `max_interval`."""
        pending = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
        deadline = time.monotonic() + timeout
        interval = min(0.1, max_interval)
        last_count, last_report = -1, 0.0
        reasons: dict[tuple[str, str], str] = {}
        while True:
            for kind, name in sorted(pending):
                group, version, _ = KINDS[kind]
                current = self._call(
                    f"{kind} {name!r}",
                    self.api.get_namespaced_custom_object,
                    group,
                    version,
                    self.namespace,
                    self.plurals[kind],
                    name,
                )
                ready, reason = ready_condition(current)
                if ready:
                    pending.discard((kind, name))
                    self.echo(f"{kind.lower()}/{name} ready")
                else:
                    reasons[(kind, name)] = reason
            if not pending:
                return
            if time.monotonic() >= deadline:
                waiting = ", ".join(
                    f"{k.lower()}/{n} ({reasons[(k, n)]})" for k, n in sorted(pending)
                )
                raise ApplyError("--wait", f"not ready after {timeout:g}s: {waiting}")
            now = time.monotonic()
            if len(pending) != last_count or now - last_report >= 10:
                left = int(deadline - now)
                self.echo(f"waiting for {len(pending)} object(s) to become ready ({left}s left)")
                last_count, last_report = len(pending), now
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 2, max_interval)


def ready_condition(obj: Mapping[str, Any]) -> tuple[bool, str]:
    """(Ready is True for the current generation, why not)."""
    status = obj.get("status") or {}
    generation = obj.get("metadata", {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return False, "not yet observed"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return True, ""
            return False, condition.get("reason") or condition.get("message") or "Ready=Unknown"
    return False, "no Ready condition yet"


def _status_message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)
