"""The layer rule between lib/'s packages (pyproject.toml's [tool.importlinter]), checked by
import-linter's lint-imports: it passes on the code as it is, and fails on a copy with one
forbidden import planted, so the contract can fail."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason=f"{LINT_IMPORTS} is missing: pip install import-linter")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # Run in `root`, so that `lib` is the copy there (the current directory comes first on sys.path).
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(root)})


def copy_of_lib(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "lib", tmp_path / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_code_keeps_every_layer_contract():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


PLANTED = [
    # (module, the import planted at its end, the contract that must break)
    ("lib/destinations/sheet/cells.py", "from ...sources import chats", "Destinations never import a source"),
    ("lib/sources/calls.py", "from ..sync import Syncer", "Sources and destinations never import the run"),
    ("lib/state/models.py", "from ..destinations.slack import summary", "The state store imports none"),
    ("lib/errors.py", "from . import settings", "Layers:"),
]


@pytest.mark.parametrize(("module", "planted", "contract"), PLANTED, ids=[m for m, _, _ in PLANTED])
def test_a_planted_forbidden_import_breaks_its_contract(tmp_path, module, planted, contract):
    root = copy_of_lib(tmp_path)
    assert lint_imports(root).returncode == 0  # the copy passes as it is
    path = root / module
    # Inside a function, where an import would hide from a reader: the contract still sees it.
    path.write_text(path.read_text() + f"\n\ndef _planted() -> None:\n    {planted}  # noqa\n")
    result = lint_imports(root)
    assert result.returncode != 0, result.stdout
    broken = result.stdout[result.stdout.index("Broken contracts"):]
    assert contract in broken, result.stdout
