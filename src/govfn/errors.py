"""Exceptions raised by govfn.

    GovfnError
    ├── RegistrationError     a function cannot be registered (bad id, duplicate, registry frozen)
    ├── FunctionLoadError     a module named with --functions / GOVFN_FUNCTIONS cannot be imported
    └── PermanentError        raised by a handler: the failure must not be retried

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
