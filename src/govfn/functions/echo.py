"""`echo`: replies with the event data it received. For development and tests."""

from __future__ import annotations

from typing import Any

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult


class EchoFunction(FunctionPlugin):
    function_id = "echo"
    version = "1.0.0"
    description = "Replies with the event data it received (ECHO_REQUESTED -> ECHO_REPLIED)."
    trigger_events = ("ECHO_REQUESTED",)
    emits = ("ECHO_REPLIED",)
    pure = True

    async def handle(self, event: Any, context: FunctionContext) -> FunctionResult:
        return FunctionResult(success=True, data=event)
