"""The shared behaviour of octvessel's frozen dataclass configs: dict/JSON round trip."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from octvessel.errors import UsageError

T = TypeVar("T", bound="JsonConfig")


class JsonConfig:
    """Mixin for ``@dataclass(frozen=True)`` configs: ``to_dict`` and a strict ``from_dict``."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any]) -> T:
        """Build from a dict, refusing keys the config does not have (listing the valid ones)."""
        if not isinstance(values, dict):
            raise UsageError(
                f"{cls.__name__}: expected a mapping of options, got {type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(
                f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; "
                f"valid: {', '.join(sorted(known))}"
            )
        return cls(**values)
