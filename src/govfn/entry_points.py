"""The entry points of one group, read straight from the installed distributions.

`importlib.metadata.entry_points(group=...)` builds a Distribution for every installed
project and parses every `entry_points.txt`: a few milliseconds at each start of
`govfn serve`, which runs every time Knative scales a function from zero. This reads the
same files but parses only those naming the group, with the same rules: the
`*.dist-info` / `*.egg-info` directories of each `sys.path` entry in order, and a project
found on two entries counts once (the first wins). Zipped `sys.path` entries are left to
importlib.metadata.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

_METADATA_DIRS = (".dist-info", ".egg-info")


class EntryPoint(NamedTuple):
    name: str
    value: str  # "module:attribute [extras]"
    group: str

    def load(self) -> Any:
        """The object the entry point names, as importlib.metadata loads it."""
        from importlib.metadata import EntryPoint as Loader

        return Loader(self.name, self.value, self.group).load()


def entry_points(group: str, path: Iterable[str] | None = None) -> list[EntryPoint]:
    """The entry points of `group` on `path` (default `sys.path`), in discovery order."""
    header = f"[{group}]"
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for location in sys.path if path is None else path:
        directory = location or "."
        if os.path.isdir(directory):
            for text in _entry_point_files(directory, seen):
                if header in text:
                    found.extend(_section(text, group))
        elif os.path.isfile(directory):  # a zip archive
            found.extend(_zipped(directory, group, seen))
    return found


def _entry_point_files(directory: str, seen: set[str]) -> Iterator[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        lowered = name.lower()
        if not lowered.endswith(_METADATA_DIRS):
            continue
        project = _normalized(lowered.rpartition(".")[0].partition("-")[0])
        if project in seen:
            continue
        seen.add(project)
        try:
            with open(os.path.join(directory, name, "entry_points.txt"), encoding="utf-8") as f:
                yield f.read()
        except OSError:  # no entry points, or a metadata file rather than a directory
            continue


def _section(text: str, group: str) -> Iterator[EntryPoint]:
    """The `name = value` lines of `[group]` in an entry_points.txt (an INI file)."""
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            yield EntryPoint(name.strip(), value.strip(), group)


def _zipped(archive: str, group: str, seen: set[str]) -> Iterator[EntryPoint]:
    from importlib.metadata import distributions

    for distribution in distributions(path=[archive]):
        project = _normalized(distribution.metadata["Name"] or "")
        if project in seen:
            continue
        seen.add(project)
        for entry in distribution.entry_points.select(group=group):
            yield EntryPoint(entry.name, entry.value, group)


def _normalized(project: str) -> str:
    """PEP 503 normalisation, as importlib.metadata compares project names."""
    return re.sub(r"[-_.]+", "_", project).lower()
