"""The layer arrows of docs/architecture.md, checked on every import of every module of
src/tsbandit: module-level ones, ones inside functions and ``if TYPE_CHECKING:`` blocks, relative
ones resolved. A failure names ``file:line`` and the arrow it crosses.

Rules (``LAYER_OF`` maps modules to layers, ``MAY_IMPORT`` draws the arrows):

1. A layer imports only itself, the base (``errors``, ``_scipy``, ``__version__``) and the
   layers its arrow points to. Arrows are not transitive: ``service -> engine -> stores`` does
   not let the service import a store.
2. No layer imports another layer's private modules or names (``_jit``, ``_check_names``).
3. Third-party packages stay in their layers (``EDGE_PACKAGES``), and the pure layers import
   only what ``THIRD_PARTY_ONLY`` lists (policies: NumPy/SciPy, plus numba behind the optional
   kernels; stores: NumPy and redis; the client: httpx; the schema: the standard library).
   This rule is about what a layer needs installed, so imports under ``TYPE_CHECKING`` are
   exempt from it (rules 1 and 2 count them).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "tsbandit"

#: first name under ``tsbandit`` -> layer; a top-level module or package not named here is
#: ``core`` (bandit.py, tutorial.py, the shared decision core). ``schema`` is the plain data
#: every side agrees on, standard library only (issue 14): ``decision`` (the one Decision type
#: and its ids) and ``events`` (the one module that writes and reads every event: the engine
#: writes with it; evaluation, the service's dashboard and report read with it; the client
#: returns the same types).
LAYER_OF: dict[str, str] = {
    "cli": "cli", "__main__": "cli",
    "service": "service",
    "engine": "engine",
    "lab": "lab",
    "experiments": "experiments",
    "evaluation": "evaluation",
    "stores": "stores",
    "policies": "policies",
    "client": "client",

    "decision": "schema", "events": "schema",
    "errors": "base", "_scipy": "base",
}

#: layer -> the other layers it may import (every layer may import itself and ``base``). The
#: cli is the composition root: besides the four shells it mounts it opens stores and engines
#: (``export``, ``sweep``), runs the tutorial's class (``demo --in-process``) and drives a
#: live service through the client (``demo``, cli/demo.py); it reaches the policies only
#: through them.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "cli": frozenset({"lab", "service", "experiments", "evaluation", "engine", "stores",
                      "core", "schema", "client"}),
    "service": frozenset({"engine", "schema"}),
    "engine": frozenset({"policies", "stores", "experiments", "core", "schema"}),
    "core": frozenset({"policies", "schema"}),
    "lab": frozenset({"policies"}),
    "experiments": frozenset({"policies", "schema"}),
    # evaluation replays a saved library Bandit (targets.bandit_policy): it reads the core's
    # serialized object through the core, not by re-implementing its format
    "evaluation": frozenset({"policies", "core", "schema"}),
    "schema": frozenset(),
    "stores": frozenset(),
    "policies": frozenset(),
    "client": frozenset({"schema"}),
    "base": frozenset(),
}

#: third-party packages that belong to some layers only (others: any layer, unless below)
EDGE_PACKAGES: dict[str, frozenset[str]] = {
    **dict.fromkeys(("typer", "click", "rich"), frozenset({"cli"})),
    **dict.fromkeys(("fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings",
                     "prometheus_client"), frozenset({"service"})),
    "httpx": frozenset({"client", "service", "cli"}),
    "redis": frozenset({"stores"}),
    "matplotlib": frozenset({"lab", "experiments", "evaluation"}),
}

#: layers whose third-party imports are limited to these (the standard library is free)
THIRD_PARTY_ONLY: dict[str, frozenset[str]] = {
    "policies": frozenset({"numpy", "scipy", "numba"}),
    "stores": frozenset({"numpy", "redis"}),
    "client": frozenset({"httpx"}),
    "schema": frozenset(),
    "base": frozenset({"numpy", "scipy"}),
}


@dataclass(frozen=True)
class Violation:
    """One import that crosses a layer the wrong way."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _module_name(path: Path, src: Path) -> tuple[str, bool]:
    """Dotted name of the module at ``path`` and whether it is a package ``__init__``."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "core"  # the package's front door re-exports the core (see _root_name_layer)
    return LAYER_OF.get(parts[1], "core")


def _private(module: str, name: str | None) -> str | None:
    """The first private part (``_x``, not dunder) of ``module[.name]`` below the package."""
    for part in [*module.split(".")[1:], *([name] if name else [])]:
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return part
    return None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """``id`` of every node inside an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
                or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imports(tree: ast.AST, module: str, is_package: bool, src: Path
             ) -> list[tuple[int, str, str | None, bool]]:
    """Every import as ``(line, absolute module, imported name or None, for type checking
    only)``: for ``from M import x`` the target is ``M.x`` when that is a module of the tree,
    else ``M`` with name ``x``."""
    package = module if is_package else module.rpartition(".")[0]
    typing_only = _type_checking_nodes(tree)
    out: list[tuple[int, str, str | None, bool]] = []
    for node in ast.walk(tree):
        hint = id(node) in typing_only
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, None, hint) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                path = src.joinpath(*sub.split("."))
                if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
                    out.append((node.lineno, sub, None, hint))
                else:
                    out.append((node.lineno, target, alias.name, hint))
    return out


def _error_names(src: Path) -> set[str]:
    errors = src / PACKAGE / "errors.py"
    if not errors.is_file():
        return set()
    tree = ast.parse(errors.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef)}


def check_tree(src: Path) -> list[Violation]:
    """Every violation of the rules in ``src/tsbandit``, in file and line order (one per
    import statement and arrow, naming what it imports)."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    base_names = _error_names(src) | {"__version__"}
    crossings: dict[tuple[str, int, str], list[str]] = {}
    found: set[Violation] = set()
    for path in sorted((src / PACKAGE).rglob("*.py")):
        module, is_package = _module_name(path, src)
        layer = _layer(module)
        rel = path.relative_to(src.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for line, target, name, hint in _imports(tree, module, is_package, src):
            top = target.split(".")[0]
            if top != PACKAGE:
                if top in stdlib or not top or hint:  # a type hint installs nothing
                    continue
                edge = EDGE_PACKAGES.get(top)
                only = THIRD_PARTY_ONLY.get(layer)
                if edge is not None and layer not in edge:
                    found.add(Violation(rel, line, f"{layer} -> {top} ({top} belongs to "
                                                   f"{', '.join(sorted(edge))})"))
                elif only is not None and top not in only:
                    names = ", ".join(sorted(only)) or "the standard library"
                    found.add(Violation(rel, line, f"{layer} -> {top} ({layer} may import only "
                                                   f"{names})"))
                continue
            to = _layer(target)
            if target == PACKAGE and name in base_names:
                to = "base"
            if to in (layer, "base"):
                continue
            shown = f"{target}.{name}" if name else target
            if to not in MAY_IMPORT[layer]:
                allowed = ", ".join(sorted(MAY_IMPORT[layer] | {"base"}))
                arrow = f"{layer} -> {to} (%s; {layer} may import only {allowed})"
            elif (private := _private(target, name)) is not None:
                arrow = f"{layer} -> {to} private {private} (%s)"
            else:
                continue
            crossings.setdefault((rel, line, arrow), []).append(shown)
    found.update(Violation(rel, line, arrow % ", ".join(names))
                 for (rel, line, arrow), names in crossings.items())
    return sorted(found, key=lambda v: (v.path, v.line, v.message))


def test_no_import_crosses_a_layer_the_wrong_way() -> None:
    violations = check_tree(SRC)
    assert not violations, "imports crossing a layer:\n" + "\n".join(map(str, violations))


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "src" / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "src"


CLEAN = {
    "__init__.py": "from .bandit import Bandit\nfrom .errors import TsbanditError\n",
    "errors.py": "class TsbanditError(Exception):\n    pass\n",
    "bandit.py": "from .policies import beta\nfrom . import errors\n",
    "engine.py": "from .stores import memory\nfrom .bandit import Bandit\nimport numpy\n",
    "policies/__init__.py": "from . import _jit\n",
    "policies/_jit.py": "import numba\n",
    "policies/beta.py": "import numpy as np\nfrom .._scipy import special\n",
    "stores/__init__.py": "",
    "stores/memory.py": "import sqlite3\nimport numpy\n",
    "service/__init__.py": "",
    "service/app.py": "import fastapi\nfrom .. import __version__, TsbanditError\n"
                      "from ..engine import Engine\n",
    "lab/__init__.py": "",
    "lab/runner.py": "from ..policies import beta\nfrom ..policies.beta import BetaModel\n",
    "cli/__init__.py": "import typer\nfrom ..service import app\nfrom ..lab import runner\n",
    "events.py": "import json\nfrom .errors import TsbanditError\n",
    "decision.py": ("from dataclasses import dataclass\nfrom typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    import numpy as np\n"),
    "client/__init__.py": "import httpx\nfrom ..decision import dataclass\n",
}


def test_a_tree_that_keeps_the_arrows_passes(tmp_path: Path) -> None:
    assert check_tree(_tree(tmp_path, CLEAN)) == []


def test_the_checker_catches_planted_bad_imports(tmp_path: Path) -> None:
    planted = {
        **CLEAN,
        # inside a function: the stores reach the policies
        "stores/memory.py": "import numpy\n\n\ndef f():\n    from ..policies import beta\n",
        # inside TYPE_CHECKING, and a private module of another layer
        "lab/runner.py": ("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                          "    from tsbandit.policies._jit import kernel\n"
                          "from ..policies.beta import _helper\n"
                          "from rich.progress import BarColumn, Progress\n"),
        # the event schema is plain data: the standard library only
        "events.py": "import numpy\nimport json\n",
        # the service past the engine, absolute and relative; a core name from the front door
        "service/app.py": ("import tsbandit.stores.memory\nfrom ..policies import beta\n"
                           "from .. import Bandit\nfrom .. import __version__\n"),
        # a heavy extra outside its layer, and a third-party package in a pure layer
        "policies/beta.py": "import numpy\nimport fastapi\nimport pandas\n",
        # the client reaches the server side
        "client/__init__.py": "from ..engine import Engine\n",
    }
    found = {str(v) for v in check_tree(_tree(tmp_path, planted))}
    assert found == {
        "src/tsbandit/client/__init__.py:1: client -> engine (tsbandit.engine.Engine; client may "
        "import only base, schema)",
        "src/tsbandit/events.py:1: schema -> numpy (schema may import only the standard "
        "library)",
        "src/tsbandit/lab/runner.py:6: lab -> rich (rich belongs to cli)",
        "src/tsbandit/lab/runner.py:4: lab -> policies private _jit "
        "(tsbandit.policies._jit.kernel)",
        "src/tsbandit/lab/runner.py:5: lab -> policies private _helper "
        "(tsbandit.policies.beta._helper)",
        "src/tsbandit/policies/beta.py:2: policies -> fastapi (fastapi belongs to service)",
        "src/tsbandit/policies/beta.py:3: policies -> pandas (policies may import only "
        "numba, numpy, scipy)",
        "src/tsbandit/service/app.py:1: service -> stores (tsbandit.stores.memory; service "
        "may import only base, engine, schema)",
        "src/tsbandit/service/app.py:2: service -> policies (tsbandit.policies.beta; service "
        "may import only base, engine, schema)",
        "src/tsbandit/service/app.py:3: service -> core (tsbandit.Bandit; service may import "
        "only base, engine, schema)",
        "src/tsbandit/stores/memory.py:5: stores -> policies (tsbandit.policies.beta; stores "
        "may import only base)",
    }
