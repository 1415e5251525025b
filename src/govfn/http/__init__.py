"""govfn.http: CloudEvents receivers and the management API.

gunicorn 'govfn.http:create_app()'     or     govfn serve
"""

from govfn.http.app import GovfnApp, create_app
from govfn.http.config import HttpConfig
from govfn.http.problem import HttpProblem
from govfn.http.state import ServerState

__all__ = ["GovfnApp", "HttpConfig", "HttpProblem", "ServerState", "create_app"]
