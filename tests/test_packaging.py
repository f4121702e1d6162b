"""pyproject.toml lists every package of the source tree, so a wheel carries all of them."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = cfg["package-dir"]
    found = set()
    for pkg, folder in dirs.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            if any(part.startswith((".", "__")) for part in rel.parts):
                continue
            name = ".".join([pkg, *rel.parts])
            if name.split(".")[:2] == ["sc_neurocore", "hw"] and pkg == "sc_neurocore":
                continue
            found.add(name)
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert {"sc_neurocore.train", "sc_neurocore.cli", "sc_neurocore.distillation"} <= listed
