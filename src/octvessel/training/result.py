"""What a call of :func:`octvessel.training.train` did: :class:`TrainResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octvessel.models.base import SegmentationModel
from octvessel.training.validation import describe_best


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    best: float | None
    best_epoch: int | None
    interrupted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    model: SegmentationModel | None = field(default=None, repr=False)
    stop_signal: int = 0  # the signal that interrupted the run (0: none, or stop_after_steps)
    best_metric: str | None = None  # what picked best_epoch (validation.BEST_METRICS)
    first_epoch: int = 1  # the first epoch this call ran (1-based; > epochs_done: none ran)
    total_epochs: int = 0  # the recipe's epochs

    @property
    def epochs_run(self) -> int:
        """Epochs this call finished (0 when a finished run was resumed)."""
        return max(0, self.epochs_done - self.first_epoch + 1)

    @property
    def best_text(self) -> str:
        """The best epoch and the metric that picked it, in words."""
        return describe_best(self.best_metric, self.best, self.best_epoch)

    def summary(self) -> str:
        """One line: what this call trained (or that the run was finished) and the best epoch."""
        if self.epochs_run == 0 and self.epochs_done >= self.total_epochs:
            what = (
                f"the run was finished already ({self.epochs_done} of {self.total_epochs} epochs)"
            )
        else:
            what = (
                f"trained epochs {self.first_epoch}-{self.epochs_done} of {self.total_epochs}"
                if self.epochs_run > 1
                else f"trained epoch {self.epochs_done} of {self.total_epochs}"
            )
        return f"{what}; {self.best_text}; weights in {self.run_dir}"
