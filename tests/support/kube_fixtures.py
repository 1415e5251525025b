"""Fixtures of the real kube-apiserver (`support.kube_apiserver`): one server per test session,
started by the first test that asks for it, a fresh namespace per test.

Without the parts (`make apiserver` provides them; `make test` runs it) the tests that use it
skip and say why. Under CI (`CI=true`, where `.ci/run` → `make test` installs etcd and kubectl)
a missing etcd or kubectl fails them; the API server binary itself comes from
`../shared/bin/kube-apiserver.xz` beside the checkout, and where that file is not there they skip.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.kube_apiserver import BINARY, KubeApiServer, missing_parts

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def kube_apiserver() -> Iterator[KubeApiServer]:
    reason = missing_parts()
    if reason:
        if os.environ.get("CI") and BINARY.is_file():
            pytest.fail(f"no real API server in CI: {reason}")
        pytest.skip(reason)
    server = KubeApiServer.from_project().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kube_admin(kube_apiserver: KubeApiServer) -> Iterator[Any]:
    """A CustomObjectsApi as the admin user (for the tests' own reads and writes)."""
    from kubernetes import client

    api_client = kube_apiserver.client("admin")
    try:
        yield client.CustomObjectsApi(api_client)
    finally:
        api_client.close()


@pytest.fixture
def kube_namespace(kube_apiserver: KubeApiServer, request: pytest.FixtureRequest) -> str:
    """A new namespace named after the test (never deleted: no namespace controller runs)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return kube_apiserver.create_namespace(f"t{next(_numbers)}-{slug}"[:63].rstrip("-"))


TokenFor = Callable[..., str]


@pytest.fixture
def kube_token(kube_apiserver: KubeApiServer, kube_namespace: str) -> TokenFor:
    """`kube_token(NAME, audience=AUD)`: create the ServiceAccount NAME in this test's
    namespace (once) and return a TokenRequest token for it, as Knative's broker gets one;
    without an audience, one for the API server (a pod's own, e.g. to read the issuer's
    discovery at `kube_apiserver.issuer()`)."""

    def token_for(name: str, audience: str | None = None, duration_s: int = 600) -> str:
        return kube_apiserver.service_account_token(kube_namespace, name, audience, duration_s)

    return token_for
