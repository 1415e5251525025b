"""Manifest options from a config file, merged with command-line flags.

The file is `[tool.govfn]` in a pyproject.toml or a `govfn.yaml` (read with
`yaml.safe_load`). Without `--config`, `govfn.yaml` and then `pyproject.toml` in the
current directory are tried. Flags win over the file; maps (env, labels, annotations,
filters, delivery) are merged key by key. The file may also list `functions` modules.

    # govfn.yaml                         # pyproject.toml
    image: registry.example/fn:1.2       [tool.govfn]
    namespace: fns                       image = "registry.example/fn:1.2"
    max-scale: 5                         max-scale = 5
    delivery: {retry: 3}                 delivery = { retry = 3 }
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from govfn.manifest.errors import ManifestError
from govfn.manifest.options import ManifestOptions

MERGED_MAPS = ("env", "labels", "annotations", "filters", "delivery", "requests", "limits")
CONFIG_NAMES = ("govfn.yaml", "govfn.yml", "pyproject.toml")


def read_config(path: Path) -> dict[str, Any]:
    """The govfn settings in `path` ({} for a pyproject.toml without `[tool.govfn]`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError("--config", f"cannot read {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            document: Any = tomllib.loads(text)
            if path.name == "pyproject.toml":
                document = document.get("tool", {}).get("govfn", {})
        else:
            document = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ManifestError("--config", f"{path} is not valid: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ManifestError(
            "--config", f"{path} must hold a mapping, got {type(document).__name__}"
        )
    return document


def find_config(directory: Path) -> Path | None:
    for name in CONFIG_NAMES:
        candidate = directory / name
        if candidate.is_file() and (name != "pyproject.toml" or read_config(candidate)):
            return candidate
    return None


def merge(file_values: Mapping[str, Any], flag_values: Mapping[str, Any]) -> dict[str, Any]:
    """File values overridden by flags that were given (None means "not given")."""
    merged = {str(key).replace("-", "_"): value for key, value in file_values.items()}
    resources = merged.pop("resources", None)
    if isinstance(resources, Mapping):
        for key in resources:
            if key not in ("requests", "limits"):
                raise ManifestError(f"resources.{key}", "unknown key (requests or limits)")
        for part in ("requests", "limits"):
            if part in resources:
                merged[part] = resources[part]
    elif resources is not None:
        raise ManifestError("resources", f"expected a mapping, got {resources!r}")
    for key, value in flag_values.items():
        if value is None:
            continue
        if key in MERGED_MAPS and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_options(
    flag_values: Mapping[str, Any], config: Path | None = None, directory: Path | None = None
) -> tuple[ManifestOptions, tuple[str, ...]]:
    """Options and the config file's `functions` modules (empty when it names none)."""
    path = config if config is not None else find_config(directory or Path.cwd())
    file_values = read_config(path) if path is not None else {}
    merged = merge(file_values, flag_values)
    modules = merged.pop("functions", ())
    if isinstance(modules, str):
        modules = (modules,)
    if not isinstance(modules, list | tuple) or not all(isinstance(m, str) for m in modules):
        raise ManifestError("functions", f"expected a list of module names, got {modules!r}")
    if not merged.get("image"):
        raise ManifestError("image", "an image is required (--image or `image` in the config)")
    return ManifestOptions.from_mapping(merged), tuple(modules)
