"""OCT vessel models side by side: simulated sets with truth, and the real volume's proxies.

For each model: ``octvessel evaluate`` on fresh plain phantoms, fresh realistic phantoms
(every variant) and octified DRIVE test (pooled AUC and F1 at 0.5), then
``oct_real_agreement.py`` on one reconstruction of the real Spectralis volume (AUC against
the shadow map's weak mask, Dice between variants, border share; B-scans 100-145 apart).
One table, one run, so the models see the same data and code.

    python benchmarks/oct_model_compare.py --model iternet-oct --model runs/iternet-oct-r6 \
        [--phantoms runs/data/phantom-test] [--phantoms-real runs/data/phantom-test-real] \
        [--octified runs/data/rim-drive] [--recon runs/data/real-recon] [--json OUT.json]

The scoring sets are made by the commands in ``src/octvessel/weights/iternet-oct/README.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from oct_real_agreement import PAIRS, VARIANTS

HERE = Path(__file__).resolve().parent


def evaluate(model: str, dataset: Path, out: Path) -> dict[str, dict[str, float]]:
    """{variant or 'all': {auc_roc, f1}} of ``octvessel evaluate``."""
    cmd = [sys.executable, "-m", "octvessel", "evaluate", "-d", str(dataset), "-m", model,
           "-o", str(out), "--no-progress"]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    found = {}
    for metrics in sorted(out.rglob("metrics.json")):
        pooled = json.loads(metrics.read_text())["pooled"]
        key = metrics.parent.name if metrics.parent != out else "all"
        found[key] = {"auc_roc": pooled["auc_roc"], "f1": pooled["f1"]}
    return found


def real(model: str, recon: Path, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "oct_real_agreement.py"), "--model", model,
           "--recon", str(recon), "--phantom-seeds", "", "--json", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["real"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--phantoms", type=Path, default=Path("runs/data/phantom-test"))
    ap.add_argument("--phantoms-real", type=Path, default=Path("runs/data/phantom-test-real"))
    ap.add_argument("--octified", type=Path, default=Path("runs/data/rim-drive"))
    ap.add_argument(
        "--recon", type=Path, required=True, help="reconstruct folder of the real volume"
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, model in enumerate(args.model):
            r: dict[str, Any] = {}
            for key, ds in (("plain", args.phantoms), ("realistic", args.phantoms_real),
                            ("octified", args.octified)):  # fmt: skip
                r[key] = evaluate(model, ds, Path(tmp) / f"{i}-{key}")
            r["real"] = real(model, args.recon, Path(tmp) / f"{i}-real.json")
            report[model] = r
            print(f"{model}: done", flush=True)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def print_table(report: dict[str, Any]) -> None:
    def v3(r: dict, key: str, field: str = "auc_roc") -> str:
        return " / ".join(f"{r[key][v][field]:.4f}" for v in VARIANTS)

    def real3(r: dict, part: str, field: str) -> str:
        return " / ".join(f"{r['real'][part][v][field]:.3f}" for v in VARIANTS)

    def pairs(r: dict, part: str, field: str) -> str:
        return " / ".join(f"{r['real'][part][f'{a}-{b}'][field]:.3f}" for a, b in PAIRS)

    rows = [
        ("plain phantoms AUC P1 / P2 / P3", lambda r: v3(r, "plain")),
        ("realistic phantoms AUC", lambda r: v3(r, "realistic")),
        ("octified DRIVE test AUC / F1", lambda r: "{auc_roc:.4f} / {f1:.4f}".format(**r["octified"]["all"])),
        ("real AUC vs weak mask, all", lambda r: real3(r, "all", "auc_vs_weak")),
        ("real AUC vs weak mask, held out", lambda r: real3(r, "held_out", "auc_vs_weak")),
        ("real Dice between variants, all", lambda r: pairs(r, "all", "dice")),
        ("the same, inner", lambda r: pairs(r, "all", "dice_inner")),
        ("real Dice, held out, inner", lambda r: pairs(r, "held_out", "dice_inner")),
        ("real prob. correlation, all", lambda r: pairs(r, "all", "prob_corr")),
        ("real border share", lambda r: " / ".join(
            f"{r['real']['border'][v]:.3f}" for v in VARIANTS)),
    ]  # fmt: skip
    models = list(report)
    print("| | " + " | ".join(models) + " |")
    print("|---" * (len(models) + 1) + "|")
    for label, fn in rows:
        cells = []
        for m in models:
            try:
                cells.append(fn(report[m]))
            except (KeyError, TypeError) as exc:
                cells.append(f"? ({exc})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
