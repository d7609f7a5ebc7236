"""The one model-card builder: every ``README.md`` beside weights is a :class:`ModelCard`.

Used by :func:`octvessel.models.pretrained.model_card` (a bundle saved from Python), the
trainer's run folder (:func:`octvessel.training.run_folder.run_card`) and
``scripts/ship_weights.py`` (shipped weights: data, commands, metrics, limits). A card is
a title, an optional summary paragraph, a list of facts (rendered as bullets), sections
(a heading and its lines) and closing lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelCard:
    """A model card in Markdown.

    Attributes:
        title: the ``#`` heading.
        summary: a paragraph under the title ("" for none).
        facts: one bullet each (without the leading ``- ``).
        sections: (heading, lines) pairs rendered as ``## heading`` blocks.
        closing: lines after everything else (licence, how weights were kept ...).
    """

    title: str
    summary: str = ""
    facts: list[str] = field(default_factory=list)
    sections: list[tuple[str, Sequence[str]]] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)

    def fact(self, text: str) -> ModelCard:
        self.facts.append(text)
        return self

    def section(self, heading: str, lines: Sequence[str]) -> ModelCard:
        self.sections.append((heading, list(lines)))
        return self

    def render(self) -> str:
        """The Markdown text, ending with one newline."""
        lines = [f"# {self.title}", ""]
        if self.summary:
            lines += [self.summary, ""]
        lines += [f"- {f}" for f in self.facts]
        for heading, body in self.sections:
            lines += ["", f"## {heading}", "", *body]
        if self.closing:
            lines += ["", *self.closing]
        return "\n".join(lines) + "\n"


def scale_text(scale: Any) -> str:
    """The card's line for a bundle's pixel size (:class:`octvessel.pixel_size.ModelScale`)."""
    if scale is None:
        return (
            "pixel size not recorded (an older bundle): inputs run on their own grid; "
            "pass --input-scale to rescale (docs/scale.md)"
        )
    return f"{scale.describe()}; inputs are resampled to it (docs/scale.md)"


__all__ = ["ModelCard", "scale_text"]
