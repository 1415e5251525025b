"""Sender verification under load: an OIDC issuer on loopback for the whole benchmark run
(discovery and an RS256 key set, the tests' issuer), and the one token a server's load sends.

A Knative broker attaches the same token to every delivery until it nears expiry, so each
launch mints one token that outlives the server's run and every request to that server
carries it, the readiness probe included. The issuer runs in this process; the server reads
discovery and keys from it once, then verifies tokens against them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
AUDIENCE = "serving.knative.dev/service/default/echo"
SENDERS = "system:serviceaccount:default:*"  # allows the issuer's trigger subject
TOKEN_LIFETIME_S = 3600  # Knative's default; a server's run lasts under a minute

_issuer: list[Any] = []  # the run's issuer, once started
_tokens: list[str] = []  # the token of the last server launched


def _running_issuer() -> Any:
    """The run's issuer, started at first use and stopped at exit."""
    if not _issuer:
        import atexit
        import threading

        sys.path.insert(0, str(REPO / "tests"))
        from support.oidc_issuer import Issuer

        issuer = Issuer()
        thread = threading.Thread(target=issuer.server.serve_forever, daemon=True)
        thread.start()
        atexit.register(issuer.server.shutdown)
        _issuer.append(issuer)
    return _issuer[0]


def environment(scratch: Path) -> dict[str, str]:
    """The environment that turns sender verification on, for a fresh token of its own."""
    issuer = _running_issuer()
    _tokens.append(issuer.token(aud=AUDIENCE, lifetime_s=TOKEN_LIFETIME_S))
    return {
        "GOVFN_OIDC_ISSUER": issuer.url,
        "GOVFN_OIDC_AUDIENCE": AUDIENCE,
        "GOVFN_EVENT_SENDERS": SENDERS,
        "GOVFN_SERVICE_ACCOUNT_DIR": str(scratch / "no-service-account"),
    }


def headers() -> dict[str, str]:
    """What every request to the last server launched with `environment` carries."""
    return {"Authorization": f"Bearer {_tokens[-1]}"}
