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


__all__ = ["ModelCard"]
