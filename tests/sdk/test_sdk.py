"""The function-author SDK: plugins, the decorator, the registry and module loading."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import govfn
from govfn import (
    FunctionContext,
    FunctionPlugin,
    FunctionRegistry,
    FunctionResult,
    RegistrationError,
    governed_function,
)
from govfn.chronicle import cid_of
from govfn.errors import FunctionLoadError
from govfn.functions import BillingProcessor, EchoFunction
from govfn.registry import load_functions

SCHEMA = json.loads(files("govfn").joinpath("schemas/function-descriptor.schema.json").read_text())


def test_exported_names() -> None:
    assert set(govfn.__all__) >= {
        "FunctionPlugin",
        "FunctionContext",
        "FunctionResult",
        "FunctionRegistry",
        "FunctionRuntime",
        "governed_function",
        "PermanentError",
        "Delivery",
        "EventDataError",
    }
    for name in govfn.__all__:
        assert hasattr(govfn, name), name
    assert govfn.FunctionRuntime.__module__ == "govfn.runtime"
    with pytest.raises(AttributeError, match="no_such_name"):
        govfn.no_such_name  # noqa: B018


def test_the_package_loads_its_names_on_first_use() -> None:
    code = (
        "import sys, govfn.cli, govfn.errors\n"
        "assert 'asyncio' not in sys.modules and 'govfn.runtime' not in sys.modules\n"
        "from govfn import governed_function, FunctionRuntime\n"
        "assert 'govfn.runtime' in sys.modules\n"
        "assert governed_function.__module__ == 'govfn.decorator'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_sdk_core_imports_no_web_or_kubernetes() -> None:
    code = (
        "import sys, govfn, govfn.functions, govfn.chronicle;"
        "print(sorted(m for m in ('flask','gunicorn','kubernetes','yaml','jsonschema','werkzeug')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("plugin", [EchoFunction(), BillingProcessor()], ids=str)
def test_builtin_descriptors_validate(plugin: FunctionPlugin) -> None:
    descriptor = plugin.descriptor()
    jsonschema.Draft202012Validator(SCHEMA).validate(descriptor)
    body = {k: v for k, v in descriptor.items() if k != "descriptor_cid"}
    assert descriptor["descriptor_cid"] == cid_of(body)
    assert descriptor["spec"] == "GCAP-SPEC-FUNCTION-DESCRIPTOR-0001"


def test_schema_rejects_a_bad_descriptor() -> None:
    descriptor = EchoFunction().descriptor() | {"function_id": "Not_DNS"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(descriptor)


@pytest.mark.parametrize(
    ("function_id", "message"),
    [
        ("", "non-empty"),
        ("UPPER", "DNS-1123"),
        ("-lead", "DNS-1123"),
        ("trail-", "DNS-1123"),
        ("under_score", "DNS-1123"),
        ("a" * 64, "63"),
    ],
)
def test_function_id_is_a_dns_label(function_id: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        governed_function(function_id, trigger_events=["T"])(lambda e, c: e)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"version": "one"}, "semantic"),
        ({"trigger_events": "T"}, "sequence"),
        ({"trigger_events": ["has space"]}, "not a valid CloudEvent type"),
        ({"trigger_events": ["T", "T"]}, "twice"),
        ({"emits": ["A", "B"]}, "one event type"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_attributes_are_named(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"trigger_events": ["T"]} | options
    with pytest.raises(ValueError, match=message):
        governed_function("f", **arguments)(lambda e, c: e)


def test_decorator_returns_the_function_and_registers(fresh_default_registry) -> None:
    def handler(event: Any, context: FunctionContext) -> Any:
        """Doubles the value.

        More text."""
        return event * 2

    decorated = governed_function("double", trigger_events=["T"], emits=["D"])(handler)
    assert decorated is handler and handler(2, FunctionContext()) == 4
    plugin = fresh_default_registry.get("double")
    assert plugin is handler.__govfn_plugin__  # type: ignore[attr-defined]
    assert plugin.description == "Doubles the value."
    result = asyncio.run(plugin.handle(21, FunctionContext()))
    assert result == FunctionResult(success=True, data=42)


def test_async_handler_and_explicit_registry(fresh_default_registry) -> None:
    mine = FunctionRegistry()

    @governed_function("asyncy", trigger_events=["T"], registry=mine)
    async def asyncy(event: Any, context: FunctionContext) -> Any:
        await asyncio.sleep(0)
        return {"got": event}

    assert "asyncy" in mine and "asyncy" not in fresh_default_registry
    result = asyncio.run(mine.get("asyncy").handle(1, FunctionContext()))  # type: ignore[union-attr]
    assert result.data == {"got": 1}


def test_registry_index_duplicates_and_freeze() -> None:
    registry = FunctionRegistry()
    echo, billing = EchoFunction(), BillingProcessor()
    registry.register(echo)
    registry.register(echo)  # same object: no-op
    registry.register(billing)
    assert [p.function_id for p in registry.all()] == ["billing", "echo"]
    assert registry.by_trigger("ECHO_REQUESTED") == (echo,)
    assert registry.by_trigger("NOTHING") == ()

    class OtherEcho(FunctionPlugin):
        function_id = "echo"

    with pytest.raises(RegistrationError, match=r"already registered.*EchoFunction"):
        registry.register(OtherEcho())
    registry.unregister("echo")
    assert registry.by_trigger("ECHO_REQUESTED") == () and "echo" not in registry
    with pytest.raises(KeyError):
        registry.unregister("echo")
    registry.freeze("the test server")
    with pytest.raises(RegistrationError, match="the test server"):
        registry.register(echo)


def test_load_builtins_when_nothing_is_named() -> None:
    registry = load_functions([], FunctionRegistry(), include_entry_points=False)
    assert sorted(p.function_id for p in registry) == ["billing", "echo"]


def _write_module(tmp_path: Path, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))


def test_load_named_module_and_entry_points(tmp_path: Path, monkeypatch) -> None:
    _write_module(
        tmp_path,
        "govfn_test_mod_a",
        """
        from govfn import governed_function, FunctionPlugin, FunctionResult

        @governed_function("alpha", trigger_events=["A"])
        def alpha(event, context):
            return event

        class Beta(FunctionPlugin):
            function_id = "beta"
            trigger_events = ("B",)
            async def handle(self, event, context):
                return FunctionResult(success=True)
        """,
    )
    _write_module(
        tmp_path,
        "govfn_test_mod_ep",
        """
        from govfn import governed_function

        @governed_function("gamma", trigger_events=["G"])
        def gamma(event, context):
            return event
        """,
    )
    dist = tmp_path / "govfn_test_ep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: govfn-test-ep\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[govfn.functions]\ngamma = govfn_test_mod_ep:gamma\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_functions(["govfn_test_mod_a"], FunctionRegistry())
    assert sorted(p.function_id for p in registry) == ["alpha", "beta", "gamma"]
    # Loading again into another registry registers the same plugin objects.
    again = load_functions(["govfn_test_mod_a"], FunctionRegistry())
    assert again.get("alpha") is registry.get("alpha")


def test_unimportable_module_is_named() -> None:
    with pytest.raises(FunctionLoadError, match="no_such_govfn_module"):
        load_functions(["no_such_govfn_module"], FunctionRegistry(), include_entry_points=False)


def test_context_from_dict_refuses_unknown_and_non_strings() -> None:
    assert FunctionContext.from_dict({"event_id": "1"}).event_id == "1"
    with pytest.raises(ValueError, match="unknown context field"):
        FunctionContext.from_dict({"nope": "x"})
    with pytest.raises(ValueError, match="must be a string"):
        FunctionContext.from_dict({"event_id": 1})


def test_the_descriptor_schema_and_the_sdk_agree_on_function_ids() -> None:
    from govfn.names import DNS1123_LABEL_MAX, DNS1123_LABEL_PATTERN

    function_id = SCHEMA["properties"]["function_id"]
    assert function_id["pattern"] == DNS1123_LABEL_PATTERN
    assert function_id["maxLength"] == DNS1123_LABEL_MAX


def test_authors_name_a_failure_with_the_sdk_s_error_kind() -> None:
    from govfn import ErrorKind

    declined = FunctionResult(success=False, error="no", error_kind=ErrorKind.PERMANENT)
    assert declined.to_dict()["error_kind"] == "permanent"
    assert (ErrorKind.PERMANENT.status, ErrorKind.PERMANENT.retried) == (422, False)
