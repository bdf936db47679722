"""Guard rails of the one-namespace layout (ARCHITECTURE.md section 2)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
LEAVES = ("xrdata.loaders", "xrdata.synth", "xrdata.fed_training")
HEAVY = ("torch", "mne", "librosa", "cv2", "flwr", "ray", "pyxdf", "soundfile", "hypothesis", "scipy")


def _package_folders() -> dict[str, Path]:
    """Every folder holding an __init__.py under a mapped top-level folder, by dotted package name."""
    found = {}
    for pkg, folder in PACKAGE_DIR.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found[".".join([pkg, *rel.parts])] = init.parent
    return found


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, folder in _package_folders().items():
        for py in folder.glob("*.py"):
            mods[pkg if py.stem == "__init__" else f"{pkg}.{py.stem}"] = py
    return mods


def test_every_package_folder_is_listed() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    missing = set(_package_folders()) - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages or the wheel drops them"


def test_no_tests_inside_package_folders() -> None:
    stray = [p for f in _package_folders().values() for p in f.glob("test_*.py")]
    assert not stray, f"tests live only under tests/: {stray}"


def _imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; use absolute xrdata.* imports"
            out.append((node.module or "", node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
    return out


def test_absolute_imports_and_dependency_direction() -> None:
    bare = {"schemas", "loaders", "synth", "fed_training"}
    for mod, path in _modules().items():
        for name, line in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            assert name.split(".")[0] not in bare, f"{where}: import xrdata.{name}, not the bare folder name"
            leaf = next((leaf for leaf in LEAVES if mod.startswith(leaf)), None)
            if leaf is not None:
                others = [o for o in LEAVES if o != leaf]
                assert not any(name.startswith(o) for o in others), f"{where}: leaves never import each other"
            elif mod.startswith("xrdata.schemas"):
                assert not name.startswith("xrdata"), f"{where}: schemas is data and imports no xrdata code"
            elif mod not in ("xrdata.cli", "xrdata.quickstart"):
                assert not any(name.startswith(leaf) for leaf in LEAVES), (
                    f"{where}: the core does not import loaders/synth/fed_training (only cli does)"
                )


def test_import_xrdata_pulls_in_no_heavy_library() -> None:
    code = (
        "import sys, xrdata, xrdata.schemas, xrdata.loaders, xrdata.synth, xrdata.fed_training;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.slow
def test_wheel_contains_every_package_and_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("xrdata-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg in PYPROJECT["tool"]["setuptools"]["packages"]:
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, f"{pkg} missing from the wheel"
    assert "xrdata/py.typed" in names
    schemas = {n for n in names if n.startswith("xrdata/schemas/") and n.endswith(".json")}
    assert len(schemas) >= 8, schemas
    assert any(n.startswith("xrdata/loaders/mappings/") and n.endswith(".json") for n in names)
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
