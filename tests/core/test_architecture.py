"""The house rules: layers that import only downward, a lazy public surface, project imports at
module top, private names kept private, every shipped effect declared (README "Architecture")."""

from __future__ import annotations

import ast
import importlib
import inspect
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import blendfx
import pytest
from blendfx.effect import ENTRY_POINT_GROUP, Effect

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("toolkit", "effects", "render")
LINT = REPO / ".ci" / "lint_imports.py"

#: Heavy optional dependencies a function may import where one path of a light module needs them.
HEAVY = {"torch", "librosa", "diffusers", "blendfx.spectral.spectrogram",
         "blendfx.effects.diffusion.generator",
         "pyroomacoustics",  # optional (test extra): probe_signals.shoebox_response
         "ray"}  # (render-many's optional backend: 0.4 s to import, installed with [farm])
MAX_FUNCTION_IMPORTS = 15


def _library_files() -> list[Path]:
    return sorted(p for d in SOURCES for p in (REPO / d).rglob("*.py"))


def _copy_sources(dest: Path) -> None:
    for d in SOURCES:
        shutil.copytree(REPO / d, dest / d, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(REPO / "setup.cfg", dest / "setup.cfg")


def _lint(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LINT), "--repo", str(repo)], capture_output=True,
                          text=True, timeout=300)


def test_import_contracts_hold_and_an_upward_import_breaks_them(tmp_path):
    _copy_sources(tmp_path)
    clean = _lint(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "3 kept, 0 broken" in clean.stdout

    # the core reaching up into a stage: the layers contract must fail, naming the import
    errors = tmp_path / "toolkit" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom blendfx.effects import utility  # noqa\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "BROKEN" in broken.stdout and "blendfx.errors -> blendfx.effects" in broken.stdout


def test_an_undeclared_stage_to_stage_import_breaks_the_independence_contract(tmp_path):
    _copy_sources(tmp_path)
    stylizer = tmp_path / "effects" / "stylizer" / "impulse.py"
    stylizer.write_text(stylizer.read_text() + "\nfrom blendfx.effects.composer import theory  # noqa\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "Stages are independent" in broken.stdout and "BROKEN" in broken.stdout


def _modules_loaded_by(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def test_import_blendfx_loads_nothing_heavy():
    loaded = _modules_loaded_by("import blendfx; blendfx.__version__")
    assert not loaded & {"numpy", "torch", "diffusers", "librosa", "scipy", "pedalboard"}


def test_dsp_stages_do_not_load_torch():
    """A chain of DSP effects, the Composer and the registry's names never import torch."""
    loaded = _modules_loaded_by(
        "import blendfx\n"
        "names = sorted(blendfx.EFFECT_REGISTRY)\n"
        "from blendfx.effects import Composer, Utility, AdaptiveAmplifier, MaskExtractor, Stylizer\n"
        "Composer(); Utility(gain_db=-3); AdaptiveAmplifier(); MaskExtractor(); Stylizer()")
    assert not loaded & {"torch", "diffusers", "librosa"}


def test_torch_loads_when_a_torch_stage_is_built():
    loaded = _modules_loaded_by("import blendfx\nblendfx.effects.MusicNoiseSegmenter()")
    assert "torch" in loaded


def test_cli_help_loads_neither_numpy_nor_the_renderer():
    loaded = _modules_loaded_by(
        "from blendfx.render import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass")
    assert not loaded & {"numpy", "torch", "blendfx.render.renderer", "blendfx.render.commands"}


def _imports(path: Path) -> list[tuple[ast.AST, bool]]:
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    return [(n, id(n) in top) for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def _target(node: ast.AST) -> str:
    if isinstance(node, ast.ImportFrom):
        return ("." * node.level) + (node.module or "")
    return node.names[0].name


def test_project_imports_are_at_module_top_and_function_imports_are_few():
    inside = []
    for path in _library_files():
        for node, at_top in _imports(path):
            if not at_top:
                inside.append((path.relative_to(REPO), node.lineno, _target(node)))
    assert len(inside) <= MAX_FUNCTION_IMPORTS, inside
    not_heavy = [i for i in inside if i[2] not in HEAVY]
    assert not not_heavy, f"function-level imports of light or project modules: {not_heavy}"


def test_no_private_name_is_imported_from_another_module():
    crossing = []
    for path in [*_library_files(), *sorted((REPO / "benchmarks").glob("*.py")),
                 *sorted((REPO / "examples").glob("*.py"))]:
        for node, _ in _imports(path):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                    "blendfx")):
                crossing += [(path.relative_to(REPO), node.lineno, a.name) for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
    assert not crossing


def _stage_modules() -> list[str]:
    names = []
    for path in (REPO / "effects").rglob("*.py"):
        rel = path.relative_to(REPO / "effects").with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        names.append(".".join(["blendfx.effects", *parts]))
    return sorted(names)


def test_every_shipped_effect_is_declared_and_loads_lazily():
    declared = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    defined = {}
    for name in _stage_modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, Effect) and cls.__module__ == name and cls.__dict__.get(
                    "registered", True) and not cls_name.startswith("_")):
                defined[cls_name] = cls
    assert set(defined) <= set(declared), set(defined) - set(declared)
    for cls_name, cls in defined.items():
        assert blendfx.EFFECT_REGISTRY[cls_name] is cls
        # the package-level lazy names agree with the entry points
        assert getattr(blendfx.effects, cls_name) is cls
        assert getattr(blendfx, cls_name) is cls


def test_registry_behaves_as_a_mapping():
    reg = blendfx.EFFECT_REGISTRY
    assert "Composer" in reg and "NoSuchEffect" not in reg
    with pytest.raises(KeyError):
        reg["NoSuchEffect"]
    real = reg["Composer"]
    del reg["Composer"]
    try:
        assert "Composer" not in reg and reg.get("Composer") is None
        assert "Composer" not in list(reg)
    finally:
        reg["Composer"] = real
    assert reg["Composer"] is real
