"""The package's layers (docs/architecture.md), checked on the import statements of every module.

spec (fixedpoint, params, kinds) <- views (golden, bundle, data, train, distillation; hw; sim)
<- tools (plan, demo) <- cli. A module may import its own layer and the layers below it, never above:
the library never imports the CLI, and the spec, the golden model, the bundle and the data never import
the gateware, the testbenches or torch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sc_neurocore
import sc_neurocore.hw
import sc_neurocore.sim

PACKAGES = {"sc_neurocore": Path(sc_neurocore.__file__).parent, "sc_neurocore.hw": Path(sc_neurocore.hw.__file__).parent,
            "sc_neurocore.sim": Path(sc_neurocore.sim.__file__).parent}

SPEC = {"sc_neurocore.fixedpoint", "sc_neurocore.params", "sc_neurocore.kinds"}
#: Integer-only views and data: no gateware, no testbench, no torch.
INTEGER = SPEC | {"sc_neurocore.golden", "sc_neurocore.bundle", "sc_neurocore.data", "sc_neurocore.fileio",
                  "sc_neurocore.events"}


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, root in PACKAGES.items():
        for p in sorted(root.rglob("*.py")):
            rel = p.relative_to(root).with_suffix("")
            parts = [x for x in rel.parts if x != "__init__"]
            name = ".".join([pkg, *parts])
            if pkg == "sc_neurocore" and parts and parts[0] in ("hw", "sim"):
                continue  # installed elsewhere (an editable checkout may nest them)
            mods[name] = p
    return mods


def _is_main_guard(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of everything ``name`` imports, at any depth except under ``if __name__ == "__main__"``."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if _is_main_guard(child):
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    anchor = base[:len(base) - (child.level - 1)]
                    mod = ".".join(anchor + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in child.names)
            visit(child)

    visit(tree)
    return out


MODULES = _modules()


def _violations(rule) -> list[str]:
    bad = []
    for name, path in MODULES.items():
        for imp in sorted(_imports(name, path)):
            why = rule(name, imp)
            if why:
                bad.append(f"{name} imports {imp}: {why}")
    return bad


def _under(imp: str, pkg: str) -> bool:
    return imp == pkg or imp.startswith(pkg + ".")


def test_the_modules_are_found():
    assert {"sc_neurocore.params", "sc_neurocore.golden", "sc_neurocore.cli", "sc_neurocore.hw.core",
            "sc_neurocore.sim.runner"} <= set(MODULES)


def test_the_library_never_imports_the_cli():
    assert not _violations(lambda n, i: "the CLI is the top layer" if _under(i, "sc_neurocore.cli")
                           and not _under(n, "sc_neurocore.cli") else None)


def test_integer_views_import_no_gateware_testbench_or_torch():
    def rule(n, i):
        if n not in INTEGER:
            return None
        # (Amaranth itself is allowed: FixedFormat.amaranth_shape names a format's signal shape, lazily.)
        for banned in ("sc_neurocore.hw", "sc_neurocore.sim", "sc_neurocore.train", "sc_neurocore.distillation",
                       "torch", "cocotb"):
            if _under(i, banned):
                return f"{n} is an integer view; {banned} is above it"
        return None

    assert not _violations(rule)


def test_spec_imports_only_the_spec():
    def rule(n, i):
        if n in SPEC and _under(i, "sc_neurocore") and i not in SPEC and not any(_under(i, s) for s in SPEC):
            return "the spec layer depends on nothing else of the package"
        return None

    assert not _violations(rule)


def test_gateware_never_imports_the_testbenches_or_training():
    def rule(n, i):
        if _under(n, "sc_neurocore.hw"):
            for banned in ("sc_neurocore.sim", "sc_neurocore.train", "sc_neurocore.distillation", "torch", "cocotb"):
                if _under(i, banned):
                    return f"the gateware and its tools sit below {banned}"
        return None

    assert not _violations(rule)


def test_nir_interop_is_a_view_on_the_spec():
    """sc_neurocore.nir maps graphs onto the spec and runs the golden model; it needs neither the gateware,
    the testbenches nor the trainer (the trainer uses it, lazily, for a NIR teacher)."""
    def rule(n, i):
        if _under(n, "sc_neurocore.nir"):
            for banned in ("sc_neurocore.hw", "sc_neurocore.sim", "sc_neurocore.train", "sc_neurocore.distillation",
                           "sc_neurocore.plan", "sc_neurocore.demo"):
                if _under(i, banned):
                    return f"the NIR view sits beside the trainer, not above {banned}"
        return None

    assert "sc_neurocore.nir.graph" in MODULES
    assert not _violations(rule)


@pytest.mark.parametrize("source, expect", [
    ("from sc_neurocore.cli import main\n", True),
    ("if __name__ == '__main__':\n    from sc_neurocore.cli import main\n", False),
    ("def f():\n    from ..cli import common\n", True),
])
def test_the_checker_itself_sees_imports(tmp_path, source, expect):
    p = tmp_path / "m.py"
    p.write_text(source)
    found = any(_under(i, "sc_neurocore.cli") for i in _imports("sc_neurocore.hw.m", p))
    assert found is expect
