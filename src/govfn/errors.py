"""Exceptions raised by govfn.

    GovfnError
    ├── RegistrationError     a function cannot be registered (bad id, duplicate, registry frozen)
    ├── FunctionLoadError     a module named with --functions / GOVFN_FUNCTIONS cannot be imported
    ├── PermanentError        raised by a handler: the failure must not be retried
    └── EventDataError        event data that does not fit a typed handler (also a ValueError)

A handler signals "do not retry" by raising `PermanentError`; any other exception is
treated as transient (Knative's broker retries it).
"""

from __future__ import annotations


class GovfnError(Exception):
    """Base class of every error govfn raises on purpose."""


class RegistrationError(GovfnError):
    """A function cannot be registered."""


class FunctionLoadError(GovfnError):
    """A functions module cannot be loaded."""


class PermanentError(GovfnError):
    """A handler failure that retrying cannot fix (bad input, refused business rule)."""


class EventDataError(GovfnError, ValueError):
    """Event data that does not fit a handler's event type (a dataclass or a pydantic model);
    `field` is the path at fault (`items[0].price`; `""` for the data as a whole)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)
