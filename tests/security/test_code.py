"""Security properties of the code itself, checked statically.

The server never deserialises code-bearing formats or evaluates strings: no pickle (nor
its relatives), no eval/exec/compile, no numpy load with pickles allowed. ruff's security
rules (flake8-bandit, "S") stay selected, and only the two ignores with stated reasons.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.server.granian_process import server_env
from tests.server.resilience.processes import run_launcher

REPO = Path(__file__).resolve().parents[2]
SERVER_FILES = sorted((REPO / "server").rglob("*.py"))

# Modules that unpickle (or run code) on load: a tampered file would run in the server.
UNSAFE_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [
                f"{where} imports {a.name}"
                for a in node.names
                if a.name.split(".")[0] in UNSAFE_MODULES
            ]
        elif (
            isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES
        ):
            found.append(f"{where} imports from {node.module}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if isinstance(func, ast.Name) and name in UNSAFE_CALLS:
                found.append(f"{where} calls {name}()")
            if name in {"loads", "load"} and isinstance(func, ast.Attribute):
                owner = func.value
                if isinstance(owner, ast.Name) and owner.id in UNSAFE_MODULES:
                    found.append(f"{where} calls {owner.id}.{name}()")
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append(f"{where} passes allow_pickle other than False")
    return found


def test_server_code_has_no_pickle_eval_or_exec() -> None:
    """No server module imports a pickling module or calls eval, exec, compile, __import__."""
    assert len(SERVER_FILES) > 20, "the walk should see the whole server package"
    findings = [finding for path in SERVER_FILES for finding in _findings(path)]
    assert findings == []


def test_the_walk_catches_what_it_forbids(tmp_path: Path) -> None:
    """The checker itself flags each forbidden construct (so the test above can fail)."""
    bad = tmp_path / "probe.py"
    source = (
        "import pickle\nfrom joblib import load\nimport numpy as np\n"
        "eval('1')\nexec('x = 1')\npickle.loads(b'')\nnp.load('f', allow_pickle=True)\n"
    )
    bad.write_text(source)
    findings = _findings(bad)
    assert len(findings) == 6, findings


def test_ruff_security_rules_stay_on() -> None:
    """pyproject selects ruff's "S" rules, ignores only S101/S311, and exempts no server file."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in config["select"]
    assert set(config.get("ignore", [])) & {f"S{n}" for n in range(100, 1000)} <= {"S101", "S311"}
    for pattern, rules in config.get("per-file-ignores", {}).items():
        if any(rule.startswith("S") for rule in rules):
            assert not pattern.startswith("server"), f"{pattern} must not switch off S rules"


def test_a_bad_admin_token_is_never_printed(tmp_path: Path) -> None:
    """A too-short admin token stops start-up with a message that does not contain it."""
    secret = "short-secret"  # 12 characters: refused, the minimum is 16
    env = server_env(tmp_path, tmp_path, admin_token=secret)
    result = run_launcher(env, timeout_s=30)
    assert result.returncode == 2
    assert "SCANOPT_ADMIN_TOKEN" in result.stderr
    assert secret not in result.stdout + result.stderr
