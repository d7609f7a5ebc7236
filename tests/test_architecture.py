"""The import graph obeys CONTRIBUTING.md's rules and has no cycles; deprecated aliases warn;
no module is longer than a newcomer can read in one sitting."""

from __future__ import annotations

import ast
import importlib
import re
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
ROOT = "octvessel"


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module under src/octvessel."""
    out = {}
    for f in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the octvessel modules it imports anywhere (also inside functions), except
    imports under ``if TYPE_CHECKING:`` (they never run)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            else:
                continue
            graph[name] |= {t for t in targets if t == ROOT or t.startswith(ROOT + ".")}
    return graph


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def rules() -> dict[str, set[str]]:
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    block = re.search(r"```import-rules\n(.*?)```", text, re.S)
    assert block, "CONTRIBUTING.md lost its ```import-rules block"
    table = {}
    for line in block.group(1).strip().splitlines():
        name, _, allowed = line.partition(":")
        table[name.strip()] = set(allowed.split())
    return table


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    mods = modules()
    graph = imports(mods)
    # a package's __init__ re-exporting its own modules is not a cycle; a module importing
    # its own package's __init__ back is
    assert cycles({m: {t for t in graph[m] if t in mods} for m in mods}) == []


def test_every_unit_obeys_the_import_rules():
    table = rules()
    mods = modules()
    graph = imports(mods)
    units = {unit(m) for m in mods} - {ROOT}
    assert not units - set(table), (
        f"add these to CONTRIBUTING.md's import rules: {units - set(table)}"
    )
    broken = sorted(
        f"{m} imports {t} ({unit(t)} is not in {unit(m)}'s rule)"
        for m in mods
        for t in graph[m]
        if unit(m) != ROOT and unit(t) not in table[unit(m)] | {unit(m), ROOT}
    )
    assert broken == []


def test_the_checker_sees_violations(tmp_path):
    """The graph reader finds lazy imports and skips TYPE_CHECKING ones (it can fail)."""
    pkg = tmp_path / "octvessel"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from octvessel.b import z\n"
        "def f():\n    from octvessel.a import y\n"
    )
    (pkg / "a" / "y.py").write_text("from .x import f\n")
    (pkg / "b.py").write_text("")
    mods = {
        "octvessel": pkg / "__init__.py",
        "octvessel.a": pkg / "a" / "__init__.py",
        "octvessel.a.x": pkg / "a" / "x.py",
        "octvessel.a.y": pkg / "a" / "y.py",
        "octvessel.b": pkg / "b.py",
    }
    graph = imports(mods)
    assert graph["octvessel.a.x"] == {"octvessel.a.y"}
    assert graph["octvessel.a.y"] == {"octvessel.a.x"}
    assert cycles({m: graph[m] for m in mods}) == [["octvessel.a.x", "octvessel.a.y"]]


@pytest.mark.parametrize(
    "old, new, name",
    [
        ("octvessel.predictor", "octvessel.inference.predictor", "Predictor"),
        ("octvessel.sliding_window", "octvessel.inference.sliding_window", "sliding_window"),
    ],
)
def test_moved_modules_keep_working_with_a_deprecation_warning(old, new, name):
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        alias = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)
    assert getattr(alias, name) is getattr(importlib.import_module(new), name)


def test_public_import_paths_stay():
    from octvessel.evaluation import evaluate_dataset, find_prediction, read_probability
    from octvessel.inference import InferenceConfig, Predictor, predict_image, resample
    from octvessel.inference.predictor import list_inputs, reuse_freed_memory

    assert callable(predict_image) and callable(evaluate_dataset)
    assert InferenceConfig().method == "auto" and Predictor.__name__ == "Predictor"
    assert all(callable(f) for f in (find_prediction, read_probability, resample))
    assert callable(list_inputs) and callable(reuse_freed_memory)


#: The longest a module may be (lines; CONTRIBUTING.md asks for a few hundred).
MAX_LINES = 450
#: Modules allowed over the limit, each with the reason (none today: keep it so).
EXCEPTIONS: dict[str, str] = {}


def line_counts(mods: dict[str, Path]) -> dict[str, int]:
    return {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in mods.items()}


def test_no_module_is_over_the_line_limit():
    mods = modules()
    assert set(EXCEPTIONS) <= set(mods), f"not modules: {sorted(set(EXCEPTIONS) - set(mods))}"
    counts = line_counts(mods)
    too_long = {m: n for m, n in counts.items() if n > MAX_LINES}
    unexcused = sorted(f"{m} ({too_long[m]} lines)" for m in set(too_long) - set(EXCEPTIONS))
    assert unexcused == [], f"split these modules (at most {MAX_LINES} lines): {unexcused}"
    stale = sorted(set(EXCEPTIONS) - set(too_long))
    if stale:
        warnings.warn(f"remove from EXCEPTIONS (now <= {MAX_LINES} lines): {stale}", stacklevel=1)


def test_the_line_limit_sees_a_long_module(tmp_path):
    """The count is of lines in the file (it can fail)."""
    f = tmp_path / "long.py"
    f.write_text("x = 1\n" * (MAX_LINES + 1), encoding="utf-8")
    assert line_counts({"octvessel.long": f}) == {"octvessel.long": MAX_LINES + 1}


@pytest.mark.parametrize(
    "old, names",
    [
        ("octvessel.oct.enface", "BOUNDARY_SOURCES EDGES EnFace EnFaceConfig NAMED_SLABS NEEDED "
         "PRESETS REDUCERS Slab VARIANTS check_enface_volume isotropic_rows normalize_stripes "
         "parse_variant project reconstruct reconstruct_all resample_rows resolve_boundaries "
         "stretch to_native_grid vessel_contrast"),
        ("octvessel.oct.phantom", "LEVELS Phantom PhantomConfig make_volume write_dataset"),
        ("octvessel.oct.readers", "DEFAULT_MAX_VOXELS FORMATS VENDOR_FORMATS assumed_note "
         "check_voxels detect_volume_format find_volumes max_voxels raw_shapes_that_fit "
         "read_avanti read_volume"),
        ("octvessel.oct.layers", "DETECTED DetectConfig MIN_DEPTH PeakConfig boundary_errors "
         "detect_boundaries detect_boundaries_peak"),
        ("octvessel.sim.octify", "CHANNELS FIELD_DEG GENERATOR MM_PER_DEGREE OctifyConfig "
         "crop_positions octify_sample resample_matrix source_mm_per_px"),
    ],
)  # fmt: skip
def test_split_modules_keep_their_public_names(old, names):
    """Every public name of a module split into smaller ones is still importable from it."""
    module = importlib.import_module(old)
    missing = [n for n in names.split() if not hasattr(module, n)]
    assert missing == [], f"{old} lost {missing}"
