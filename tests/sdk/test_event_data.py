"""Typed event data in-process: the dataclass reader and its JSON Schema (cross-checked with
jsonschema), registration-time resolution, the runtime's refusal without a record, the
untyped path untouched, and pydantic when it is importable."""

from __future__ import annotations

import asyncio
import enum
import importlib.util
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import jsonschema
import pytest

from govfn import (
    EventDataError,
    FunctionContext,
    FunctionPlugin,
    FunctionRegistry,
    FunctionResult,
    FunctionRuntime,
    governed_function,
)
from govfn.chronicle import MemoryChronicle
from govfn.event_data import event_model_of, model_for
from govfn.outcome import ErrorKind

if TYPE_CHECKING:
    from decimal import Decimal


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Leaf:
    name: str
    children: list[Leaf] = field(default_factory=list)


@dataclass
class Everything:
    text: str
    count: int
    ratio: float
    flag: bool
    nothing: None
    anything: Any
    size: Size
    level: Level
    mode: Literal["a", 1]
    either: int | str
    maybe: float | None
    listed: list[int]
    tupled: tuple[str, ...]
    unique: frozenset[int]
    mapped: dict[str, bool]
    tree: Leaf
    defaulted: str = "d"


GOOD: dict[str, Any] = {
    "text": "t",
    "count": 2.0,  # JSON does not tell 2 from 2.0
    "ratio": 1,
    "flag": False,
    "nothing": None,
    "anything": [{"x": None}],
    "size": "l",
    "level": 2,
    "mode": 1,
    "either": "s",
    "maybe": None,
    "listed": [1, 2],
    "tupled": ["a"],
    "unique": [3, 1],
    "mapped": {"k": True},
    "tree": {"name": "root", "children": [{"name": "leaf"}]},
}

BAD = [
    ({"text": 1}, "text", "expected a string, got 1"),
    ({"count": True}, "count", "expected an integer, got True"),
    ({"count": 2.5}, "count", "expected an integer, got 2.5"),
    ({"ratio": "1"}, "ratio", "expected a number, got '1'"),
    ({"ratio": 10**400}, "ratio", "expected a number a float can hold"),
    ({"flag": 0}, "flag", "expected true or false, got 0"),
    ({"nothing": 0}, "nothing", "expected null, got 0"),
    ({"size": "m"}, "size", "expected one of ['s', 'l'], got 'm'"),
    ({"level": True}, "level", "expected one of [1, 2], got True"),
    ({"mode": "1"}, "mode", "expected one of ['a', 1], got '1'"),
    ({"either": 1.5}, "either", "expected integer or string, got 1.5"),
    ({"listed": [1, "2"]}, "listed[1]", "expected an integer, got '2'"),
    ({"tupled": "a"}, "tupled", "expected an array, got 'a'"),
    ({"mapped": {"k": 1}}, "mapped.k", "expected true or false, got 1"),
    ({"tree": {"name": "r", "children": [{}]}}, "tree.children[0].name", "is required"),
    ({"tree": []}, "tree", "expected an object (Leaf), got []"),
]


def test_every_supported_type_is_read() -> None:
    model = model_for(Everything)
    assert model is not None
    value = model.parse(GOOD)
    assert value == Everything(
        text="t",
        count=2,
        ratio=1.0,
        flag=False,
        nothing=None,
        anything=[{"x": None}],
        size=Size.LARGE,
        level=Level.HIGH,
        mode=1,
        either="s",
        maybe=None,
        listed=[1, 2],
        tupled=("a",),
        unique=frozenset({1, 3}),
        mapped={"k": True},
        tree=Leaf("root", [Leaf("leaf")]),
    )
    assert type(value.count) is int and type(value.ratio) is float


@pytest.mark.parametrize(("change", "path", "message"), BAD)
def test_what_does_not_fit_names_its_path(change: dict[str, Any], path: str, message: str) -> None:
    model = model_for(Everything)
    assert model is not None
    with pytest.raises(EventDataError) as caught:
        model.parse({**GOOD, **change})
    assert caught.value.field == path
    assert message in caught.value.reason


@pytest.mark.parametrize(("change", "path", "message"), BAD)
def test_the_schema_agrees_with_the_reader(change: dict[str, Any], path: str, message: str) -> None:
    """An independent validator (jsonschema) accepts what the reader accepts and refuses
    what it refuses, at the same place."""
    model = model_for(Everything)
    assert model is not None
    schema = model.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(GOOD)) == []
    errors = list(validator.iter_errors({**GOOD, **change}))
    if change == {"ratio": 10**400}:  # a number to JSON Schema; only a float cannot hold it
        assert errors == []
        return
    assert errors, change
    assert path.split("[")[0].split(".")[0] in {str(error.absolute_path[0]) for error in errors}


def test_a_recursive_dataclass_keeps_its_definition() -> None:
    model = model_for(Leaf)
    assert model is not None
    schema = model.json_schema()
    assert schema["$ref"] == "#/$defs/Leaf"
    assert schema["$defs"]["Leaf"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Leaf"}
    jsonschema.Draft202012Validator(schema).validate({"name": "a", "children": [{"name": "b"}]})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"name": "a", "children": [{}]})


@dataclass
class WithDate:
    at: datetime


@dataclass
class WithPair:
    pair: tuple[int, str]


@dataclass
class WithIntKeys:
    table: dict[int, str]


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (WithDate, "WithDate.at: <class 'datetime.datetime'> cannot be read from JSON"),
        (WithPair, "WithPair.pair: only tuple[T, ...] can be read from JSON"),
        (WithIntKeys, "WithIntKeys.table: JSON object keys are strings"),
    ],
)
def test_a_type_govfn_cannot_read_is_refused_at_registration(cls: type, message: str) -> None:
    def handler(event: Any, context: FunctionContext) -> None:
        pass

    handler.__annotations__["event"] = cls
    with pytest.raises(ValueError) as caught:
        governed_function("typed", trigger_events=["T"], registry=FunctionRegistry())(handler)
    assert str(caught.value).startswith("typed: event type: ")
    assert message in str(caught.value)


def untyped(event, context):  # type: ignore[no-untyped-def]
    return event


def typed_only_for_checkers(event: Decimal, context: FunctionContext) -> None:
    pass


def test_untyped_handlers_stay_untyped() -> None:
    assert event_model_of(untyped) is None
    assert event_model_of(typed_only_for_checkers) is None  # Decimal: a TYPE_CHECKING import
    for annotation in (Any, dict, dict[str, Any], int, "Everything | None"):
        untyped.__annotations__["event"] = annotation
        assert event_model_of(untyped) is None, annotation
    untyped.__annotations__.clear()


@pytest.fixture
def registry() -> FunctionRegistry:
    return FunctionRegistry()


def test_the_runtime_refuses_what_does_not_fit_without_running_or_recording(
    registry: FunctionRegistry,
) -> None:
    calls: list[Any] = []

    @governed_function("typed", trigger_events=["T"], registry=registry)
    async def typed(event: Leaf, context: FunctionContext) -> Any:
        calls.append(event)
        return event

    chronicle = MemoryChronicle()
    runtime = FunctionRuntime(registry, chronicle)
    result = asyncio.run(runtime.invoke("typed", {"children": []}))
    assert (result.success, result.error_kind) == (False, ErrorKind.INVALID_DATA)
    assert result.error == "event data does not fit <EventModel Leaf>: name: is required"
    assert ErrorKind.INVALID_DATA.status == 400 and not ErrorKind.INVALID_DATA.retried
    assert calls == [] and chronicle.records == []
    [dispatched] = asyncio.run(runtime.dispatch("T", {"name": 5}))
    assert dispatched.error_kind is ErrorKind.INVALID_DATA and chronicle.records == []
    ok = asyncio.run(runtime.invoke("typed", {"name": "a"}))
    assert ok.success and ok.data == {"name": "a", "children": []}  # answered as JSON
    assert calls == [Leaf("a")] and len(chronicle.records) == 2


def test_the_untyped_handler_gets_the_very_object(registry: FunctionRegistry) -> None:
    seen: list[Any] = []

    @governed_function("plain", trigger_events=["P"], registry=registry)
    async def plain(event: dict[str, Any], context: FunctionContext) -> None:
        seen.append(event)

    plugin = registry.get("plain")
    assert plugin is not None and plugin.event_model is None
    data = {"name": 5}
    assert asyncio.run(FunctionRuntime(registry).invoke("plain", data)).success
    assert seen[0] is data


def test_a_plugin_class_is_typed_by_its_handle(registry: FunctionRegistry) -> None:
    class Typed(FunctionPlugin):
        function_id = "typed-class"
        trigger_events = ("T",)

        async def handle(self, event: Leaf, context: FunctionContext) -> FunctionResult:
            return FunctionResult(success=True, data={"got": type(event).__name__})

    class Inherits(Typed):
        function_id = "typed-child"

    assert Typed.event_model is not None and Typed.event_model.type is Leaf
    assert Inherits.event_model is Typed.event_model
    registry.register(Typed())
    result = asyncio.run(FunctionRuntime(registry).invoke("typed-class", {"name": "n"}))
    assert result.data == {"got": "Leaf"}
    descriptor = Typed().descriptor()
    assert descriptor["event_schema"]["$defs"]["Leaf"]["required"] == ["name"]


pydantic_only = pytest.mark.skipif(
    importlib.util.find_spec("pydantic") is None, reason="pydantic is not installed"
)


@pydantic_only
def test_a_pydantic_model_names_nested_fields_as_govfn_does() -> None:
    import pydantic

    class Line(pydantic.BaseModel):
        price: float

    class Basket(pydantic.BaseModel):
        lines: list[Line]

    model = model_for(Basket)
    assert model is not None
    assert model.parse({"lines": [{"price": "1.5"}]}) == Basket(lines=[Line(price=1.5)])
    with pytest.raises(EventDataError) as caught:
        model.parse({"lines": [{"price": 1}, {"price": "x"}]})
    assert caught.value.field == "lines[1].price"
    assert model.dump(Basket(lines=[Line(price=2)])) == {"lines": [{"price": 2.0}]}
    schema = model.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
