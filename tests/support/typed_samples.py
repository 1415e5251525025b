"""Typed functions the HTTP tests serve (`--functions support.typed_samples`): handlers whose
event parameter is a dataclass, and, when pydantic is importable, a pydantic model."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

from govfn import FunctionContext, governed_function

PYDANTIC = importlib.util.find_spec("pydantic") is not None


@dataclass
class Item:
    sku: str
    price: float
    quantity: int = 1


@dataclass
class Order:
    order_id: str
    items: list[Item]
    note: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.order_id.startswith("o-"):
            raise ValueError(f"order_id {self.order_id!r} does not start with 'o-'")


@dataclass
class Priced:
    order_id: str
    total: float
    lines: int


@governed_function("price", trigger_events=["ORDER_PLACED"], emits=["ORDER_PRICED"])
def price(order: Order, context: FunctionContext) -> Priced:
    """Prices an order: reads the instance's attributes, answers with a dataclass."""
    assert isinstance(order, Order) and all(isinstance(item, Item) for item in order.items)
    total = sum(item.price * item.quantity for item in order.items)
    return Priced(order_id=order.order_id, total=total, lines=len(order.items))


if PYDANTIC:
    import pydantic

    class Refund(pydantic.BaseModel):
        refund_id: str
        amount: float = pydantic.Field(gt=0)
        reason: str = "unspecified"

    @governed_function("refund", trigger_events=["REFUND_REQUESTED"], emits=["REFUND_ACCEPTED"])
    async def refund(request: Refund, context: FunctionContext) -> Any:
        """Accepts a refund: gets a model, answers with one."""
        assert isinstance(request, Refund)
        return request.model_copy(update={"reason": request.reason.upper()})
