"""Sender identity: who sent a CloudEvent, from the OIDC token Knative's broker attaches.

    config     `OidcConfig`: the issuer, the audience, the allowed senders (GOVFN_OIDC_*)
    issuer     discovery and keys of the issuer, fetched with the pod's own credentials
    verifier   `SenderVerifier`: a bearer token in, a `Sender` (or a refusal) out
    refusal    `SenderRefused`: a refusal's status and reason

The JOSE work is PyJWT's; govfn only chooses what to accept, as Knative's own verifier
(`pkg/auth/verifier.go`) does.
"""

from govfn.identity.config import OidcConfig, Sender, allowed
from govfn.identity.refusal import SenderRefused

__all__ = ["OidcConfig", "Sender", "SenderRefused", "allowed"]
