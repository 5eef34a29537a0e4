"""The import rules of docs/architecture.md, checked on the source (every import statement, also those inside
functions): layers only point down, the library never imports the entry-point layer, no import circles."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "emodistill_jax"
# bottom to top; a unit (top-level module or subpackage of emodistill_jax) may import its own layer and the
# layers below it
LAYERS = {
    "core": ("errors", "files", "locking", "storage", "tables", "emotions", "config_checks", "run_config",
             "host_memory"),
    "building blocks": ("domains", "lm", "prompts", "signals"),
    "dialogue": ("negotiation",),
    "agents": ("agents", "serving"),
    "data": ("sweep",),
    "learning": ("iql", "distill"),
    "evaluation": ("evaluation",),
    "orchestration": ("pipeline",),
}
RANK = {unit: rank for rank, units in enumerate(LAYERS.values()) for unit in units}
# the entry-point layer: what each top-level folder may import besides emodistill_jax
TOP = {"configs": {"configs"}, "benchmarks": {"benchmarks", "configs"}, "launchers": {"launchers", "configs", "benchmarks"}}


def modules(folder: str) -> dict[str, str]:
  """dotted module name -> file, for every .py file under ROOT/folder."""
  out = {}
  for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
    for f in files:
      if f.endswith(".py"):
        path = os.path.join(dirpath, f)
        name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        out[name.removesuffix(".__init__")] = path
  return out


def imports(name: str, path: str) -> list[tuple[str, int]]:
  """(absolute imported name, line) of every import statement in the file."""
  package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
  out = []
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out += [(a.name, node.lineno) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(parts + [base] if base else parts)
      out += [(f"{base}.{a.name}", node.lineno) for a in node.names]  # a module, or a name in module `base`
  return out


def unit(module: str) -> str:
  return module.split(".")[1] if module.count(".") else ""


def resolve(target: str, known: dict[str, str]) -> str | None:
  """The project module an imported name lives in (None: outside the project)."""
  while target and target not in known:
    target = target.rpartition(".")[0]
  return target or None


def test_every_library_unit_has_a_layer():
  units = {unit(m) for m in modules(PACKAGE) if m != PACKAGE}
  assert units <= set(RANK), f"add to LAYERS (and docs/architecture.md): {sorted(units - set(RANK))}"


@pytest.mark.parametrize("layer", list(LAYERS))
def test_library_layers_only_import_downwards(layer):
  known = modules(PACKAGE)
  broken = []
  for name, path in known.items():
    if name == PACKAGE or unit(name) not in LAYERS[layer]:
      continue
    for target, line in imports(name, path):
      top = target.split(".")[0]
      if top in TOP or top == "tests":
        broken.append(f"{path}:{line} imports {target} (the library never imports {top}/)")
        continue
      module = resolve(target, known)
      if module and module != PACKAGE and RANK[unit(module)] > RANK[unit(name)]:
        broken.append(f"{path}:{line} imports {module} (layer {layer} may not import a higher layer)")
  assert not broken, "\n".join(broken)


@pytest.mark.parametrize("folder", list(TOP))
def test_entry_point_layer_imports(folder):
  broken = []
  for name, path in modules(folder).items():
    for target, line in imports(name, path):
      top = target.split(".")[0]
      if top in TOP and top not in TOP[folder]:
        broken.append(f"{path}:{line} imports {target} ({folder}/ may import {sorted(TOP[folder])} and the library)")
  assert not broken, "\n".join(broken)


def test_no_import_circles():
  """No cycle among the package's modules (Tarjan's strongly connected components), lazy imports included."""
  known = modules(PACKAGE)
  graph = {name: set() for name in known}
  for name, path in known.items():
    for target, _ in imports(name, path):
      module = resolve(target, known)
      if module and module != name and module != PACKAGE:
        graph[name].add(module)
  index, low, stack, on_stack, circles = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        circles.append(sorted(component))

  for v in graph:
    if v not in index:
      visit(v)
  assert not circles, f"import circles: {circles}"


def test_the_checks_catch_a_violation(tmp_path):
  """The rule check is not vacuous: a library-like file importing configs and a higher layer is caught."""
  bad = tmp_path / "emodistill_jax" / "domains" / "bad.py"
  bad.parent.mkdir(parents=True)
  bad.write_text("from configs import sweep\nfrom ..pipeline import run\n")
  found = imports("emodistill_jax.domains.bad", str(bad))
  assert found == [("configs.sweep", 1), ("emodistill_jax.pipeline.run", 2)]
  known = modules(PACKAGE)
  assert RANK[unit(resolve(found[1][0], known))] > RANK["domains"]
