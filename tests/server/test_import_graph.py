"""The server's import graph: no cycle between its packages, no offline code or libraries.

Every import statement counts, including those inside functions and under TYPE_CHECKING:
a cycle hidden behind either is still two packages that cannot be understood apart.
A node is a package of server/ (server.store, server.inference, ...) or a top-level
module (server.app, server.errors, ...).
"""

from __future__ import annotations

import ast
import graphlib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Training, export and benchmarks are offline; scikit-learn and Polars are theirs.
FORBIDDEN = frozenset({"train", "export", "bench", "tests", "sklearn", "polars"})


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _node(module: str, package: str) -> str | None:
    parts = module.split(".")
    if parts[0] != package or len(parts) < 2:
        return None
    return parts[1]


def package_graph(root: Path, package: str = "server") -> dict[str, set[str]]:
    """Edges between the package's sub-packages and top-level modules."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted((root / package).rglob("*.py")):
        source = _node(".".join(path.relative_to(root).with_suffix("").parts), package)
        for module in _imports(path):
            target = _node(module, package)
            if source is not None and target is not None and target != source:
                edges[source].add(target)
    return edges


def cycle_in(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its nodes in order), or None."""
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_cycle_between_server_packages() -> None:
    """server's packages and top-level modules import each other in one direction only."""
    edges = package_graph(ROOT)
    assert {"store", "experiments", "analysis", "inference", "routes"} <= set(edges)
    assert cycle_in(edges) is None, f"import cycle: {' -> '.join(cycle_in(edges) or [])}"


def test_server_imports_no_offline_code_or_libraries() -> None:
    """No module of server/ imports train, export, bench, tests, scikit-learn or Polars."""
    offenders = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in (ROOT / "server").rglob("*.py")
        for module in _imports(path)
        if module.split(".")[0] in FORBIDDEN
    )
    assert offenders == []


def test_the_store_and_the_gate_stay_apart_from_the_analysis() -> None:
    """The per-request packages never import the analysis (scipy, matplotlib)."""
    edges = package_graph(ROOT)
    for package in ("experiments", "store", "inference"):
        assert "analysis" not in edges.get(package, set()), package


def test_a_cycle_is_found(tmp_path: Path) -> None:
    """The check itself: a package whose a and b import each other (one lazily) fails."""
    (tmp_path / "pkg" / "a").mkdir(parents=True)
    (tmp_path / "pkg" / "b").mkdir()
    (tmp_path / "pkg" / "a" / "x.py").write_text("from pkg.b.y import f\n")
    (tmp_path / "pkg" / "b" / "y.py").write_text("def f():\n    import pkg.a.x\n")
    cycle = cycle_in(package_graph(tmp_path, "pkg"))
    assert cycle is not None
    assert set(cycle) == {"a", "b"}


@pytest.mark.parametrize("module", ["polars", "sklearn.ensemble", "train.fit"])
def test_a_forbidden_import_is_seen(tmp_path: Path, module: str) -> None:
    """An offline import inside a function is still found."""
    path = tmp_path / "m.py"
    path.write_text(f"def f():\n    import {module}\n")
    assert module.split(".")[0] in {m.split(".")[0] for m in _imports(path)} & FORBIDDEN
