"""The one error the manifest package raises on purpose.

    GovfnError
    └── ManifestError   an option, a rendered object or a function graph Knative would refuse

Its message starts with the offending field (`spec.template.spec.containerConcurrency`,
`--max-scale`, `delivery.backoffPolicy`), so the CLI can print it as is and exit 2.
"""

from __future__ import annotations

from govfn.errors import GovfnError


class ManifestError(GovfnError):
    """Something Knative would reject; `field` names where, `obj` which object (if any)."""

    def __init__(self, field: str, message: str, *, obj: str | None = None) -> None:
        self.field = field
        self.obj = obj
        self.reason = message
        where = f"{obj}: " if obj else ""
        super().__init__(f"{where}{field}: {message}")
