"""Settings: the one reading of the environment, and the serving options built from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import govfn
from govfn.receiver.config import DEFAULT_MAX_BODY, DEFAULT_REQUEST_TIMEOUT_S, HttpConfig
from govfn.settings import Settings


def test_the_serving_variables_reach_the_serving_options() -> None:
    settings = Settings.from_env(
        {
            "GOVFN_FUNCTION": "echo",
            "GOVFN_DEV": "Yes",
            "GOVFN_API_TOKEN": "t0ken",
            "GOVFN_MAX_BODY_BYTES": "4096",
            "GOVFN_MAX_IN_FLIGHT": "3",
            "GOVFN_RETRY_AFTER": "0",
            "GOVFN_REQUEST_TIMEOUT": "9",
            "PORT": "9090",
        }
    )
    assert settings.port == "9090"
    assert HttpConfig.from_settings(settings) == HttpConfig(
        function_id="echo",
        dev=True,
        api_token="t0ken",
        max_body_bytes=4096,
        max_in_flight=3,
        retry_after_s=0,
        request_timeout_s=9.0,
    )


def test_unset_variables_leave_the_defaults() -> None:
    settings = Settings.from_env({"GOVFN_FUNCTION": "", "GOVFN_DEV": "0"})
    config = HttpConfig.from_settings(settings)
    assert config == HttpConfig()
    assert (config.max_body_bytes, config.request_timeout_s) == (
        DEFAULT_MAX_BODY,
        DEFAULT_REQUEST_TIMEOUT_S,
    )
    assert settings.function_id is None and settings.port is None


@pytest.mark.parametrize(
    "name",
    ["GOVFN_MAX_BODY_BYTES", "GOVFN_MAX_IN_FLIGHT", "GOVFN_RETRY_AFTER", "GOVFN_REQUEST_TIMEOUT"],
)
def test_a_limit_that_is_not_an_integer_is_named(name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be an integer, got '1.5'$"):
        Settings.from_env({name: "1.5"})


def test_a_limit_out_of_range_is_refused_by_the_options() -> None:
    with pytest.raises(ValueError, match="max_in_flight must be >= 1, got 0"):
        HttpConfig.from_settings(Settings.from_env({"GOVFN_MAX_IN_FLIGHT": "0"}))


def test_only_settings_reads_the_environment() -> None:
    root = Path(govfn.__file__).parent
    write = re.compile(r"^\s*os\.environ\[[^]]+\] = ")  # prometheus_client's directory
    readers = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        if path.relative_to(root).as_posix() != "settings.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ("os.environ" in line or "getenv(" in line) and not write.match(line)
    ]
    assert readers == []
