"""Functions for the manifest tests, loaded with `--functions govfn_manifest_samples`."""

from __future__ import annotations

from typing import Any

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult


class Orders(FunctionPlugin):
    function_id = "orders"
    version = "2.1.0+build.7"
    trigger_events = ("ORDER_PLACED", "order.retried")
    emits = ("ORDER_ACCEPTED",)

    async def handle(self, event: Any, context: FunctionContext) -> FunctionResult:
        return FunctionResult(success=True, data=event)


class Shipping(FunctionPlugin):
    function_id = "shipping-with-a-rather-long-function-identifier-for-truncation"
    trigger_events = ("ORDER_ACCEPTED",)

    async def handle(self, event: Any, context: FunctionContext) -> FunctionResult:
        return FunctionResult(success=True, data=None)
