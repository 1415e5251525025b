"""Dataclasses from JSON data, and their JSON Schema, without a third-party library.

`compile_reader(cls)` walks the dataclass's field types once and returns a reader (JSON
value -> instance, raising EventDataError naming the path at fault) and the schema; the
reader does no introspection per call. Nested dataclasses go to the schema's `$defs`;
a dataclass may refer to itself (a tree).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any

from govfn.errors import EventDataError

Reader = Callable[[Any, str], Any]  # (JSON value, its path) -> Python value
Schema = dict[str, Any]

_SEQUENCES: dict[Any, Callable[[list[Any]], Any]] = {
    list: list,
    tuple: tuple,
    set: set,
    frozenset: frozenset,
}
_JSON_DEFAULTS = (str, int, float, bool, type(None))


def compile_reader(cls: type) -> tuple[Callable[[Any], Any], Schema]:
    """The reader of dataclass `cls` (data -> instance) and its JSON Schema."""
    compiler = _Compiler()
    reader, reference = compiler.dataclass(cls)
    root = compiler.names[cls]
    schema: Schema
    if root in compiler.references:  # recursive: the root stays a definition
        schema = {**reference, "$defs": compiler.defs}
    else:
        schema = compiler.defs.pop(root)
        if compiler.defs:
            schema["$defs"] = compiler.defs

    def read(data: Any) -> Any:
        return reader(data, "")

    return read, schema


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(path: str, expected: str, value: Any) -> typing.NoReturn:
    raise EventDataError(path, f"expected {expected}, got {_show(value)}")


def _any(value: Any, path: str) -> Any:
    return value


def _none(value: Any, path: str) -> Any:
    if value is not None:
        _fail(path, "null", value)


def _str(value: Any, path: str) -> Any:
    if not isinstance(value, str):
        _fail(path, "a string", value)
    return value


def _int(value: Any, path: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 2.0: JSON does not tell integers from numbers
        _fail(path, "an integer", value)
    return value


def _float(value: Any, path: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, "a number", value)
    try:
        return float(value)
    except OverflowError:  # an integer past float's range
        _fail(path, "a number a float can hold", value)


def _bool(value: Any, path: str) -> Any:
    if not isinstance(value, bool):
        _fail(path, "true or false", value)
    return value


_SCALARS: dict[Any, tuple[Reader, Schema]] = {
    Any: (_any, {}),
    object: (_any, {}),
    None: (_none, {"type": "null"}),
    type(None): (_none, {"type": "null"}),
    str: (_str, {"type": "string"}),
    int: (_int, {"type": "integer"}),
    float: (_float, {"type": "number"}),
    bool: (_bool, {"type": "boolean"}),
}


class _Compiler:
    def __init__(self) -> None:
        self.defs: dict[str, Schema] = {}
        self.names: dict[type, str] = {}
        self.readers: dict[type, Reader] = {}
        self.references: set[str] = set()  # definitions something refers to

    def compile(self, annotation: Any, where: str) -> tuple[Reader, Schema]:
        scalar = _SCALARS.get(annotation) if _hashable(annotation) else None
        if scalar is not None:
            return scalar[0], dict(scalar[1])
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            return self.compile(args[0], where)
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return _enum(annotation)
        if origin is typing.Literal:
            return _literal(args)
        if origin is typing.Union or origin is types.UnionType:
            return self.union(args, where)
        if origin in _SEQUENCES or annotation in _SEQUENCES:
            return self.sequence(origin or annotation, args, where)
        if origin is dict or annotation is dict:
            return self.mapping(args, where)
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            reader, reference = self.dataclass(annotation)
            self.references.add(self.names[annotation])
            return reader, reference
        raise TypeError(
            f"{where}: {annotation!r} cannot be read from JSON by govfn (use str, int, float, "
            "bool, None, Any, a dataclass, an Enum, a Literal, a union, list, tuple, set or "
            "dict[str, ...]; or a pydantic model)"
        )

    def dataclass(self, cls: type) -> tuple[Reader, Schema]:
        if cls in self.readers:
            return self.readers[cls], self._ref(cls)
        if cls in self.names:  # being compiled (a recursive field): read through the table
            readers = self.readers
            return (lambda value, path: readers[cls](value, path)), self._ref(cls)
        name = (
            cls.__name__
            if cls.__name__ not in self.defs
            else f"{cls.__module__}.{cls.__qualname__}"
        )
        self.names[cls] = name
        self.defs[name] = {}  # reserved, so that a recursive field finds it
        hints = typing.get_type_hints(cls)
        fields: list[tuple[str, Reader, bool]] = []
        properties: Schema = {}
        required: list[str] = []
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            where = f"{cls.__qualname__}.{field.name}"
            reader, schema = self.compile(hints[field.name], where)
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            if field.default is not dataclasses.MISSING and isinstance(
                field.default, _JSON_DEFAULTS
            ):
                schema = {**schema, "default": field.default}
            fields.append((field.name, reader, not has_default))
            properties[field.name] = schema
            if not has_default:
                required.append(field.name)
        definition: Schema = {"type": "object", "title": cls.__name__, "properties": properties}
        if required:
            definition["required"] = required
        self.defs[name] = definition
        self.readers[cls] = reader = _object_reader(cls, tuple(fields))
        return reader, self._ref(cls)

    def _ref(self, cls: type) -> Schema:
        return {"$ref": f"#/$defs/{self.names[cls]}"}

    def union(self, args: tuple[Any, ...], where: str) -> tuple[Reader, Schema]:
        compiled = [self.compile(arg, where) for arg in args]
        readers = [reader for reader, _ in compiled]
        expected = " or ".join(_describe(schema) for _, schema in compiled)

        def read(value: Any, path: str) -> Any:
            for reader in readers:
                try:
                    return reader(value, path)
                except EventDataError:
                    continue
            _fail(path, expected, value)

        return read, {"anyOf": [schema for _, schema in compiled]}

    def sequence(self, kind: Any, args: tuple[Any, ...], where: str) -> tuple[Reader, Schema]:
        if kind is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"{where}: only tuple[T, ...] can be read from JSON, not {args!r}")
        item_reader, item_schema = self.compile(args[0] if args else Any, where)
        build = _SEQUENCES[kind]

        def read(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                _fail(path, "an array", value)
            return build([item_reader(item, f"{path}[{i}]") for i, item in enumerate(value)])

        schema: Schema = {"type": "array", "items": item_schema}
        if kind in (set, frozenset):
            schema["uniqueItems"] = True
        return read, schema

    def mapping(self, args: tuple[Any, ...], where: str) -> tuple[Reader, Schema]:
        if args and args[0] is not str:
            raise TypeError(f"{where}: JSON object keys are strings, not {args[0]!r}")
        value_reader, value_schema = self.compile(args[1] if args else Any, where)

        def read(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                _fail(path, "an object", value)
            return {key: value_reader(item, _join(path, key)) for key, item in value.items()}

        return read, {"type": "object", "additionalProperties": value_schema}


def _object_reader(cls: type, fields: tuple[tuple[str, Reader, bool], ...]) -> Reader:
    def read(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            _fail(path, f"an object ({cls.__name__})", value)
        values = {}
        for name, reader, required in fields:
            if name in value:
                values[name] = reader(value[name], _join(path, name))
            elif required:
                raise EventDataError(_join(path, name), "is required")
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:  # __post_init__ refused it
            raise EventDataError(path, f"{cls.__name__}: {exc}") from None

    return read


def _enum(cls: type[enum.Enum]) -> tuple[Reader, Schema]:
    by_value = {member.value: member for member in cls}
    values = list(by_value)

    def read(value: Any, path: str) -> Any:
        if (
            not _hashable(value)
            or value not in by_value
            or isinstance(value, bool) != isinstance(by_value[value].value, bool)
        ):
            _fail(path, f"one of {values!r}", value)
        return by_value[value]

    return read, {"enum": values}


def _literal(args: tuple[Any, ...]) -> tuple[Reader, Schema]:
    allowed = list(args)

    def read(value: Any, path: str) -> Any:
        for candidate in allowed:
            if value == candidate and type(value) is type(candidate):
                return candidate
        _fail(path, f"one of {allowed!r}", value)

    return read, {"enum": allowed}


def _describe(schema: Schema) -> str:
    if "type" in schema:
        return str(schema["type"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "enum" in schema:
        return f"one of {schema['enum']!r}"
    return "a value"


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
