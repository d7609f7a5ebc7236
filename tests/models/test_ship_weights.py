"""scripts/ship_weights.py: a two-stage run becomes a bundle whose card is read from files.

The card must list the earlier stage's command and the line that ships it where the next
stage looks for it, add up the training time of both stages, and copy the measured metrics
from the evaluation file (nothing typed in by hand).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from octvessel.models import create_model, load_model, save_pretrained

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ship_weights.py"
TINY = {"base_channels": 4, "iterations": 1, "in_channels": 1}


def _fake_run(folder: Path, metadata: dict, seconds: list[float]) -> None:
    save_pretrained(create_model("iternet", **TINY), folder, metadata=metadata)
    rows = "".join(f"{i + 1},{s}\n" for i, s in enumerate(seconds))
    (folder / "log.csv").write_text("epoch,seconds\n" + rows)
    (folder / "splits.json").write_text(json.dumps({"training": ["a"], "validation": ["b"]}))


def test_two_stage_card_lists_both_commands_and_total_time(tmp_path: Path) -> None:
    stage1 = tmp_path / "runs" / "first-stage"
    _fake_run(
        stage1,
        {
            "command": "octvessel train -d D -o runs/one --epochs 3",
            "train_seconds": 600.0,
            "hardware": "cpu: test, 1 threads",
        },
        [600.0],
    )
    run = tmp_path / "second"
    _fake_run(
        run,
        {
            "command": f"octvessel train -d D -o {run} --init-from {stage1}",
            "init_from": str(stage1),
            "init_sha256": "0" * 64,
            "hardware": "cpu: test, 2 threads",
            "seed": 0,
        },
        [300.0, 300.0],
    )
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps({"n_images": 3, "pooled": {"auc_roc": 0.91234, "f1": 0.5}, "mean": {}})
    )
    out = tmp_path / "shipped"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--run",
            str(run),
            "--name",
            "tiny",
            "--out",
            str(out),
            "--eval",
            f"held-out set={metrics}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    card = (out / "tiny" / "README.md").read_text()
    assert "octvessel train -d D -o runs/one --epochs 3" in card
    assert (
        f"python scripts/ship_weights.py --run runs/one --name first-stage --out {stage1.parent}"
        in card
    )
    assert "Trained in 20 min in all over 2 stages" in card  # 600 s + 2 x 300 s
    assert "| held-out set | 3 | 0.9123 |" in card
    model, bundle = load_model(out / "tiny")
    assert bundle.metadata["total_train_seconds"] == 1200.0
    assert [s["ref"] for s in bundle.metadata["earlier_stages"]] == [str(stage1)]
    assert bundle.sha256["model.safetensors"] in card
    assert model.count_parameters() == create_model("iternet", **TINY).count_parameters()


def test_the_same_weights_give_the_same_file_in_every_process(tmp_path: Path) -> None:
    """safetensors orders its header metadata by hash; save_weights must not (sha256 in cards)."""
    code = (
        "import sys, torch; from octvessel.models import create_model; "
        "from octvessel.models.pretrained import save_weights; torch.manual_seed(0); "
        "m = create_model('iternet', base_channels=4, iterations=1, in_channels=1); "
        "print(save_weights(m, sys.argv[1], 'float16'))"
    )
    shas = {
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / f"w{i}.safetensors")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for i in range(4)
    }
    assert len(shas) == 1, shas
    model = create_model("iternet", **TINY)
    from octvessel.models.pretrained import load_weights

    load_weights(model, tmp_path / "w0.safetensors")  # still a valid safetensors file
