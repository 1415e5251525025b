"""govfn: governed functions on Knative.

The SDK core (this package's top level and `govfn.chronicle`) imports neither Flask,
gunicorn nor the Kubernetes client, so a function's cold start does not pay for them.
"""

from govfn.decorator import governed_function
from govfn.errors import GovfnError, PermanentError, RegistrationError
from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.registry import FunctionRegistry, default_registry, load_functions, use_registry
from govfn.runtime import FunctionRuntime

__version__ = "0.1.0"

__all__ = [
    "FunctionContext",
    "FunctionPlugin",
    "FunctionRegistry",
    "FunctionResult",
    "FunctionRuntime",
    "GovfnError",
    "PermanentError",
    "RegistrationError",
    "__version__",
    "default_registry",
    "governed_function",
    "load_functions",
    "use_registry",
]
