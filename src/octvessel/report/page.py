"""HTML page pieces: escaped tables, text and base64-inlined PNG pictures (no external asset)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.errors import InputError


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 H x W x 3 (or H x W) -> PNG file bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read ({exc})", path) from None


def read_log(path: Path) -> list[dict[str, Any]]:
    """A trainer's ``log.csv`` as rows of numbers (``epoch``/``steps`` int, empty -> None)."""
    if not path.is_file():
        return []
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows.append(
                    {
                        k: None
                        if v in ("", None)
                        else (int(float(v)) if k in ("epoch", "steps") else float(v))
                        for k, v in row.items()
                    }
                )
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the training log ({exc})", path) from None
    return rows


def fmt_cell(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4f}" if np.isfinite(v) else "n/a"
    return str(v)


def _is_text(v: Any) -> bool:
    """A table cell that reads as words (left-aligned) rather than a number."""
    return isinstance(v, str) and not v.replace(".", "").replace(" ± ", "").strip().isdigit()


class Page:
    """An HTML page built from escaped pieces; images are inlined as base64 PNG."""

    CSS = """
    body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
         color:#1d2330;background:#fff;max-width:1400px}
    h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin:28px 0 8px;border-bottom:2px solid #dde3ee;
         padding-bottom:4px} h3{font-size:16px;margin:18px 0 6px}
    .sub{color:#5a6478;margin:0 0 12px}
    table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
    th,td{border:1px solid #d5dbe6;padding:3px 8px;text-align:right;white-space:nowrap}
    th{background:#eef2f8} td.l,th.l{text-align:left}
    tr.hl td{background:#f6f9e8;font-weight:600}
    img{max-width:100%;display:block} figure{margin:8px 0 14px;display:inline-block;vertical-align:top}
    figcaption{font-size:12px;color:#5a6478;margin-top:3px}
    .legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;border:1px solid #888;
         vertical-align:middle}
    pre{background:#f5f7fa;border:1px solid #dde3ee;padding:8px;font-size:12px;overflow:auto;max-height:420px}
    .note{color:#8a5a00}
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []

    def add(self, raw: str) -> None:
        self.parts.append(raw)

    def h(self, level: int, text: str) -> None:
        self.add(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text: str, cls: str | None = None) -> None:
        c = f' class="{cls}"' if cls else ""
        self.add(f"<p{c}>{html.escape(text)}</p>")

    def table(
        self,
        header: Sequence[str],
        rows: Iterable[Sequence[Any]],
        highlight: Iterable[int] = (),
    ) -> None:
        hl = set(highlight)
        out = ["<table><tr>"]
        out += [
            f'<th class="{"l" if i == 0 else ""}">{html.escape(h)}</th>'
            for i, h in enumerate(header)
        ]
        out.append("</tr>")
        for r, row in enumerate(rows):
            out.append('<tr class="hl">' if r in hl else "<tr>")
            out += [
                f'<td class="{"l" if i == 0 or _is_text(v) else ""}">{html.escape(fmt_cell(v))}</td>'
                for i, v in enumerate(row)
            ]
            out.append("</tr>")
        out.append("</table>")
        self.add("".join(out))

    def image(self, png: bytes, alt: str, caption: str | None = None) -> None:
        data = base64.b64encode(png).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.add(
            f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'
        )

    def pre(self, text: str) -> None:
        self.add(f"<pre>{html.escape(text)}</pre>")

    def render(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{self.CSS}</style></head><body>\n"
            + "\n".join(self.parts)
            + "\n</body></html>\n"
        )
