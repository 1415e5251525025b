"""govfn's entry-point reader finds what importlib.metadata finds, in the same order."""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile
from pathlib import Path

import pytest

from govfn.entry_points import entry_points


def metadata_entry_points(group: str, path: list[str]) -> list[tuple[str, str]]:
    distributions = importlib.metadata.distributions(path=path)
    seen: set[str] = set()
    found = []
    for distribution in distributions:  # the de-duplication entry_points() applies
        name = distribution._normalized_name  # type: ignore[attr-defined]
        if name in seen:
            continue
        seen.add(name)
        found += [(e.name, e.value) for e in distribution.entry_points.select(group=group)]
    return found


@pytest.mark.parametrize(
    "group", ["console_scripts", "pytest11", "govfn.functions", "no.such.group"]
)
def test_the_installed_environment_reads_alike(group: str) -> None:
    ours = [(entry.name, entry.value) for entry in entry_points(group)]
    theirs = [(e.name, e.value) for e in importlib.metadata.entry_points(group=group)]
    assert sorted(ours) == sorted(theirs)
    if group == "console_scripts":
        assert ("govfn", "govfn.cli:main") in ours  # the comparison compared something


def _dist(directory: Path, folder: str, entry_points_txt: str | None) -> None:
    dist = directory / folder
    dist.mkdir(parents=True)
    project = folder.rpartition(".")[0].partition("-")[0]
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\n")
    if entry_points_txt is not None:
        (dist / "entry_points.txt").write_text(entry_points_txt)


def test_duplicates_case_comments_extras_and_zips_read_alike(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(
        first,
        "Shop_Functions-1.0.dist-info",
        "# comment\n[govfn.functions]\n# another\ncart = shop.cart:cart_fn [fast]\n"
        "pay=shop.pay\n\n[console_scripts]\nshop = shop.cli:main\n",
    )
    _dist(second, "shop.functions-2.0.dist-info", "[govfn.functions]\nold = shop.old:fn\n")
    _dist(second, "OTHER.DIST-INFO", "[govfn.functions]\nother = other:fn\n")
    _dist(second, "nothing-1.0.egg-info", None)
    _dist(second, "legacy.egg-info", "[govfn.functions]\nlegacy = legacy:fn\n")
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        zipped.writestr(
            "zipped-1.0.dist-info/entry_points.txt", "[govfn.functions]\nz = zipped:fn\n"
        )
    path = [str(first), str(tmp_path / "missing"), str(second), str(archive)]

    ours = [(entry.name, entry.value) for entry in entry_points("govfn.functions", path)]
    assert sorted(ours) == sorted(metadata_entry_points("govfn.functions", path))
    assert ("cart", "shop.cart:cart_fn [fast]") in ours
    assert ("old", "shop.old:fn") not in ours  # the same project further down sys.path
    assert {name for name, _ in ours} == {"cart", "pay", "other", "legacy", "z"}


def test_default_path_is_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(tmp_path, "plugin-1.0.dist-info", "[govfn.functions]\np = plugin:fn\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    found = entry_points("govfn.functions")
    assert [(e.name, e.value, e.group) for e in found] == [("p", "plugin:fn", "govfn.functions")]
