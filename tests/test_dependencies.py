"""Every third-party module the package, launchers, configs and benchmarks import is a declared runtime dependency
(a fresh `pip install -e .` must run the main job; `.ci/run` runs it in such a venv), and torch is not one."""

import ast
import importlib.metadata
import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWN = {"emodistill_jax", "launchers", "configs", "benchmarks"}
# Imported at run time by a library we call rather than by our code: transformers' apply_chat_template
# (the chat template of every model folder, the sandbox student's too) needs jinja2.
INDIRECT = {"jinja2"}
# The references the benchmarks compare against; imported only in benchmarks/, inside functions.
BENCHMARK_REFERENCES = {"torch", "peft"}


def normalized(name: str) -> str:
  return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
  return {normalized(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in deps}


def imported_modules() -> dict[str, set[str]]:
  """Top-level module -> the files importing it, over the shipped packages (imports inside functions too)."""
  found = {}
  for top in sorted(OWN):
    for folder, _, files in os.walk(os.path.join(ROOT, top)):
      for name in sorted(files):
        if not name.endswith(".py"):
          continue
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as f:
          tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
          if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
          elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module]
          else:
            continue
          for m in mods:
            found.setdefault(m.split(".")[0], set()).add(os.path.relpath(path, ROOT))
  return found


def test_every_third_party_import_is_declared():
  dists = importlib.metadata.packages_distributions()
  have = declared()
  missing = []
  for module, where in sorted(imported_modules().items()):
    if module in OWN or module in sys.stdlib_module_names or module == "__future__":
      continue
    if module in BENCHMARK_REFERENCES:
      outside = {p for p in where if not p.startswith("benchmarks" + os.sep)}
      assert not outside, f"{module} is imported outside benchmarks/: {outside}"
      continue
    names = {normalized(d) for d in dists.get(module, [module])}
    if not names & have:
      missing.append(f"{module} (imported in {', '.join(sorted(where))}; distribution {', '.join(sorted(names))})")
  assert not missing, "undeclared runtime dependencies: " + "; ".join(missing)


def test_indirect_runtime_imports_are_declared_and_torch_is_not():
  assert INDIRECT <= declared()
  assert "torch" not in declared()  # parity tests only; a plain torch requirement pulls a CUDA build
