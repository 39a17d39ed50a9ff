"""The package's shape: imports follow the layer order of docs/internals.md, with no cycle; no module grows past
its size budget without saying why."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "hubkit"


def _layers() -> list[list[str]]:
    text = (REPO / "docs" / "internals.md").read_text(encoding="utf-8")
    block = text.split("<!-- layers -->", 1)[1].split("<!-- /layers -->", 1)[0]
    layers = [re.findall(r"`(hubkit[\w.]*)`", line.split("—")[0]) for line in block.splitlines() if line.strip()]
    assert layers and all(layers), block
    return layers


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the hubkit modules it imports, anywhere in its body (not under `if TYPE_CHECKING:`)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for stmt in node.body for n in ast.walk(stmt)}
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(tree):
            if id(node) in typing_only or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _layer_of(module: str, layers: list[list[str]]) -> int:
    best, level = "", -1
    for i, names in enumerate(layers):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, level = prefix, i
    assert level >= 0, f"{module} is in no layer of docs/internals.md"
    return level


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_points_up_the_layers():
    layers = _layers()
    graph = import_graph()
    upward = [f"{a} (layer {_layer_of(a, layers)}) imports {b} (layer {_layer_of(b, layers)})"
              for a in sorted(graph) for b in sorted(graph[a]) if _layer_of(b, layers) > _layer_of(a, layers)]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    assert not _cycles(import_graph())


def test_the_graph_sees_lazy_imports_and_the_checks_catch_what_they_must():
    """The checks themselves: a lazy import is an edge, and a planted cycle and upward edge are found."""
    graph = import_graph()
    assert "hubkit.runs" in graph["hubkit.eval.lm"]  # imported lazily, inside a function
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    layers = _layers()
    assert _layer_of("hubkit.hub.server.storage.gc", layers) < _layer_of("hubkit.hub.client", layers)
    assert _layer_of("hubkit.cli.main", layers) == len(layers) - 1


def test_modules_and_functions_stay_small():
    """No module over 500 lines without a reason at its top (`# size:`), no function body over 80 lines (its
    statements, after the signature and docstring)."""
    long_modules, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        top = re.split(r"^(?:from|import) ", text, maxsplit=1, flags=re.M)[0]  # the docstring and comments
        if text.count("\n") > 500 and "# size:" not in top:
            long_modules.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                lines = node.end_lineno - body[0].lineno + 1 if body else 0
                if lines > 80:
                    long_functions.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {lines} lines")
    assert not long_modules, "\n".join(long_modules)
    assert not long_functions, "\n".join(long_functions)
