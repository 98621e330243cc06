"""docs/architecture.md against the code: every module named once, in a layer, and every
import (lazy ones inside functions too, read with ast) following the page's rule:
a module imports only its own layer and lower-numbered ones, with no cycle."""

from __future__ import annotations

import ast
import re

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "ecr_login_pkg"
PAGE = REPO_ROOT / "docs" / "architecture.md"


def layers() -> dict[str, int]:
    """Module -> layer number, from the page's '### N. name' headings and '- `module`: ...' lines."""
    found: dict[str, int] = {}
    layer = 0
    for line in PAGE.read_text().splitlines():
        heading = re.match(r"### (\d+)\. ", line)
        if heading:
            layer = int(heading.group(1))
        item = re.match(r"- `(\w+)`: ", line)
        if item and layer:
            assert item.group(1) not in found, f"docs/architecture.md names `{item.group(1)}` twice"
            found[item.group(1)] = layer
    return found


def modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


def imports_of(module: str) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in it (``from . import x``, ``from .x import y``)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module.split(".")[0])
            else:  # a module, or a name of the package itself (__version__)
                names.update(alias.name if (PACKAGE / f"{alias.name}.py").exists() else "__init__" for alias in node.names)
    names.discard(module)
    return names


def test_every_module_is_in_a_layer() -> None:
    placed = layers()
    for module in modules():
        if module not in placed:
            needed = max((placed.get(name, 0) for name in imports_of(module)), default=1) or 1
            raise AssertionError(
                f"ecr_login_pkg/{module}.py is not in docs/architecture.md: add a line "
                f"'- `{module}`: <the one idea it holds>' under '### {needed}.' or a higher-numbered layer "
                f"(it imports {', '.join(sorted(imports_of(module))) or 'nothing of the package'}), "
                "and a word in 'One run, top to bottom' if a run passes through it"
            )
    gone = sorted(set(placed) - set(modules()))
    assert not gone, f"docs/architecture.md names modules that no longer exist: {gone}: remove their lines"


def test_no_module_imports_a_higher_layer() -> None:
    placed = layers()
    wrong = [
        f"{module} (layer {placed[module]}) imports {name} (layer {placed[name]})"
        for module in modules() if module in placed
        for name in sorted(imports_of(module)) if name in placed and placed[name] > placed[module]
    ]
    assert not wrong, (
        "imports against docs/architecture.md's rule (own layer or lower-numbered only): "
        + "; ".join(wrong) + ". Move the code to the lower module, or, if the design changed, the module to another layer"
    )


def test_the_imports_have_no_cycle() -> None:
    graph = {module: imports_of(module) for module in modules()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join((*path[path.index(module):], module)))
        if module in done:
            return
        for name in sorted(graph.get(module, ())):
            visit(name, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_botocore_is_imported_only_where_the_page_says_and_only_inside_functions() -> None:
    sentence = re.search(r"botocore is imported only by ([^:]*?), and only inside functions", PAGE.read_text().replace("\n", " "))
    assert sentence, "docs/architecture.md no longer says where botocore is imported"
    allowed = set(re.findall(r"`(\w+)`", sentence.group(1)))
    for module in modules():
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] in ("botocore", "boto3"):
                    assert module in allowed, f"{module} imports {name}: docs/architecture.md allows only {sorted(allowed)}"
                    assert id(node) not in top_level, f"{module} imports {name} at module level: a no-op run would load it"


def test_the_package_builds_test_set_asks_for_no_server() -> None:
    """tests/serverless_tests.txt is what debian/rules and the spec's %check run, where botocore
    may be missing (RHEL 9's build root) and no server may start: no test there takes the
    stand-in ECR or the registry, and none imports botocore or boto3."""
    listed = [line.strip() for line in (REPO_ROOT / "tests" / "serverless_tests.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert listed, "tests/serverless_tests.txt lists no module"
    for path in listed:
        tree = ast.parse((REPO_ROOT / path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                servers = {arg.arg for arg in node.args.args} & {"ecr", "registry"}
                assert not servers, f"{path}::{node.name} takes {sorted(servers)}: move it out of the serverless set"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(name.split(".")[0] in ("botocore", "boto3") for name in names), f"{path} imports botocore"
