"""The package's layers, as docs/architecture.md's layout states them: every module of pertnet/ sits in one layer, imports
only modules of its own layer or of lower ones (also where it imports inside a function), and the imports make
no cycle. `from pertnet import X` of a name that is no module is an import of pertnet/__init__.py, the top."""
import ast
import re

from conftest import ROOT

PACKAGE = ROOT / "pertnet"


def readme_layers():
    """[(layer name, {module})], top first, from docs/architecture.md's layout block of pertnet/."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    lines = re.search(r"^## Layout\n.*?^```\n(.*?)^```", text, re.S | re.M)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("pertnet/"))
    layers = []
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break  # the next top-level entry
        if re.match(r"  \S", line):
            layers.append((re.split(r"\s{2,}", line.strip())[0], set()))
        if not layers:
            continue  # the rest of pertnet/'s own description
        layers[-1][1].update(".".join(["pertnet", *m[:-3].split("/")]).removesuffix(".__init__")
                             for m in re.findall(r"[\w/]+\.py\b", line))
    return [(name, modules) for name, modules in layers if modules]


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path, known):
    """The package modules `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pertnet":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "pertnet")
    return found - {module_name(path)}


def test_every_module_is_in_one_layer_of_the_layout():
    placed = [module for _, layer in readme_layers() for module in layer]
    assert len(placed) == len(set(placed)), "a module in two layers"
    assert set(placed) == set(modules()), ("in the package, not in the layout", set(modules()) - set(placed),
                                           "in the layout, not in the package", set(placed) - set(modules()))


def test_no_module_imports_a_higher_layer():
    rank = {module: depth for depth, (_, layer) in enumerate(readme_layers()) for module in layer}  # 0: the top
    names = {module: name for name, layer in readme_layers() for module in layer}
    upward = [f"{module} ({names[module]}) imports {imported} ({names[imported]})"
              for module, path in modules().items() for imported in sorted(imports(path, rank))
              if rank[imported] < rank[module]]
    assert upward == []


def test_the_imports_make_no_cycle():
    known = modules()
    graph = {module: imports(path, known) for module, path in known.items()}
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError(" -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
