"""The house rules of docs/architecture.md, checked on the source: module size, every module
listed with its contract, no sibling's private names, no import cycles, thin scripts."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sg2img"
MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.js")])


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_passes_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def test_every_module_has_a_contract_in_the_architecture_guide():
    guide = (ROOT / "docs" / "architecture.md").read_text()
    section = guide[guide.index("## Modules"):]
    section = section[:section.index("\n## ")] if "\n## " in section else section
    first_column = [row.split("|")[1] for row in section.splitlines() if row.startswith("| `")]
    listed = {m for cell in first_column for m in re.findall(r"`([\w/]+\.(?:py|js))`", cell)}
    missing = [str(p.relative_to(PACKAGE)) for p in _modules()
               if str(p.relative_to(PACKAGE)) not in listed]
    assert not missing, f"add these modules to the table in docs/architecture.md: {missing}"
    gone = sorted(m for m in listed if not (PACKAGE / m).exists())
    assert not gone, f"the table lists modules that do not exist: {gone}"


def _imports(path: Path, *, module_level: bool = False) -> list[tuple[str | None, ast.ImportFrom |
                                                                   ast.Import]]:
    """(absolute module name or None, node) of each import; ``module_level``: only those run at
    import time (not inside functions or ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    if module_level:
        nodes = []
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
                continue
            nodes.extend(ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node])
    else:
        nodes = list(ast.walk(tree))
    out = []
    name = _module_name(path) if path.is_relative_to(PACKAGE) else None
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            target = node.module
            if node.level and name is not None:
                package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            out.append((target, node))
        elif isinstance(node, ast.Import):
            out.extend((a.name, node) for a in node.names)
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.mark.parametrize("folder", ["sg2img", "scripts"])
def test_no_module_imports_a_private_name_of_another(folder):
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for target, node in _imports(path):
            if not isinstance(node, ast.ImportFrom) or not (target or "").startswith("sg2img"):
                continue
            names = [a.name for a in node.names if _private(a.name)]
            if names or any(_private(part) for part in target.split(".")):
                found.append(f"{path.relative_to(ROOT)}: from {target} import {names or '...'}")
    assert not found, "make these names public in their module:\n" + "\n".join(found)


def test_no_import_cycles_at_import_time():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, node in _imports(path, module_level=True):
            candidates = [target] if target else []
            if isinstance(node, ast.ImportFrom) and target:
                candidates += [f"{target}.{a.name}" for a in node.names]
            # A package's __init__ importing its own submodules is how packages work.
            edges[name] |= {c for c in candidates if c in modules and c != name
                            and not c.startswith(name + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_scripts_import_neither_each_other_nor_through_sys_path():
    scripts = {p.stem for p in (ROOT / "scripts").glob("*.py")}
    found = []
    for path in sorted((ROOT / "scripts").glob("*.py")):
        text = path.read_text()
        if "sys.path.insert" in text or "sys.path.append" in text:
            # bench_vs_sg2im puts the *other project's* checkout on the path to import it.
            if path.stem != "bench_vs_sg2im":
                found.append(f"{path.name}: changes sys.path")
        for target, _ in _imports(path):
            if target and target.split(".")[0] in scripts:
                found.append(f"{path.name}: imports the script {target}")
    assert not found, "\n".join(found)


def test_no_test_loads_a_script_by_path():
    found = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name == Path(__file__).name:
            continue
        text = path.read_text()
        loads = ("spec_from_file_location" in text or "run_path" in text
                 or "SourceFileLoader" in text)
        if loads and re.search(r"""["'/]scripts["'/]""", text):
            found.append(path.name)
    assert not found, f"test the library, not the script, in: {found}"
