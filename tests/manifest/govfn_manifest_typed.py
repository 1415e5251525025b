"""Typed functions for the manifest tests (`--functions govfn_manifest_typed`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from govfn import FunctionContext, governed_function


@dataclass
class Line:
    sku: str
    quantity: int = 1


@dataclass
class Shipment:
    shipment_id: str
    lines: list[Line] = field(default_factory=list)


@governed_function("ship", trigger_events=["ORDER_PAID", "ORDER_RESENT"])
def ship(shipment: Shipment, context: FunctionContext) -> None:
    pass


@governed_function("notify", trigger_events=["ORDER_PAID"])
def notify(event: Any, context: FunctionContext) -> None:
    pass
