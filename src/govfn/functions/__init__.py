"""Built-in functions, loaded when no functions module is named."""

from govfn.functions.billing import BillingProcessor
from govfn.functions.echo import EchoFunction

__all__ = ["BillingProcessor", "EchoFunction"]
