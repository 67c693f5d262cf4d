"""The layers of docs/architecture.md: the import-linter contracts of setup.cfg hold, they
catch a forbidden import and a cycle, and no test imports the benchmarks."""
import ast
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")
needs_linter = pytest.mark.skipif(not os.path.exists(LINT), reason="import-linter is not "
                                  "installed (pip install -e '.[dev]')")


def lint(root):
    env = {**os.environ, "PYTHONPATH": root}
    return subprocess.run([LINT, "--no-logo", "--no-cache", os.path.join(root, "setup.cfg")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


@needs_linter
def test_the_package_keeps_its_layers():
    res = lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


@needs_linter
@pytest.mark.parametrize("module, line, broken", [
    ("physics/model.py", "from ..engines import base", "tlsmpi.physics is not allowed to import"),
    ("runfile/writer.py", "from .. import engines", "tlsmpi.runfile is not allowed to import"),
    ("post/figures.py", "from ..parallel import schedule", "tlsmpi.post is not allowed to import"),
    ("engines/subsystems.py", "from . import exact", "No cycles are allowed in tlsmpi.engines"),
])
def test_the_contracts_catch_a_forbidden_import(tmp_path, module, line, broken):
    shutil.copytree(os.path.join(ROOT, "tlsmpi"), tmp_path / "tlsmpi")
    shutil.copy(os.path.join(ROOT, "setup.cfg"), tmp_path)
    path = tmp_path / "tlsmpi" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    res = lint(str(tmp_path))
    assert res.returncode != 0 and broken in res.stdout, res.stdout + res.stderr


def test_no_test_imports_the_benchmarks():
    tests = os.path.join(ROOT, "tests")
    offenders = []
    for name in sorted(os.listdir(tests)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(tests, name)) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{name}:{node.lineno}" for m in mods if m.startswith("tlsmpi.bench")]
    assert not offenders, f"tests import tlsmpi.bench (take references from tests/): {offenders}"


def test_the_file_layer_names_no_engine_row():
    """The run file stores the rows an engine declares; no engine's row is spelled there."""
    folder = os.path.join(ROOT, "tlsmpi", "runfile")
    for name in os.listdir(folder):
        if name.endswith(".py"):
            with open(os.path.join(folder, name)) as fh:
                assert "concurrence_err" not in fh.read(), name
