"""What the K_SINK sender presents and trusts, as Knative's SinkBinding provides them.

- With Knative's `authentication-oidc` feature on, the SinkBinding mounts an OIDC token of
  the binding's identity at `/oidc/token` and refreshes it before it expires: it is read
  for each request and sent as `Authorization: Bearer <token>`. No file (the feature off),
  an empty one or one that is not a token: no header (the sink decides; Knative's own sinks
  then answer 401).
- With `transport-encryption`, the binding passes the sink's CA bundle as PEM text in
  `K_CA_CERTS` and mounts further bundles as `/knative-custom-certs/*.crt`. An https sink is
  trusted by the system's CAs and by these, read again for each new connection (bundles
  rotate). A file that is not PEM is skipped, with a warning.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("govfn.chronicle.sink")

TOKEN_FILE = Path("/oidc/token")
CA_DIR = Path("/knative-custom-certs")
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token


def bearer_token(path: Path | None) -> str | None:
    """The token in `path` now, or None (no file, empty, or not a bearer token)."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the sink token file %s: %s; sending without a token", path, exc)
        return None
    if not text:
        return None
    if not _TOKEN.fullmatch(text):
        log.warning("the sink token file %s holds no bearer token; sending without one", path)
        return None
    return text


def trust_context(ca_certs: str | None, ca_dir: Path | None) -> ssl.SSLContext:
    """A client context that verifies the sink with the system's CAs, `ca_certs` (PEM
    text) and every `*.crt` file in `ca_dir`."""
    import ssl

    context = ssl.create_default_context()
    if ca_certs:
        try:
            context.load_verify_locations(cadata=ca_certs)
        except (ssl.SSLError, ValueError) as exc:
            log.warning("K_CA_CERTS holds no usable PEM certificate: %s", exc)
    for path in sorted(ca_dir.glob("*.crt")) if ca_dir is not None else ():
        try:
            context.load_verify_locations(cafile=str(path))
        except (ssl.SSLError, OSError) as exc:
            log.warning("skipping CA bundle %s: %s", path, exc)
    return context
