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


# ---------------------------------------------------------------- validation helpers
# One wording for every config: "NAME=VALUE: expected ...", raised as UsageError (exit 2).


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` if it is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UsageError(f"{name}={value!r}: expected {expected}")
    return value


def check_fraction(name: str, value: Any, *, zero: bool = True, one: bool = False) -> float:
    """``value`` if it is a number in [0, 1) (``zero``/``one`` say which ends are allowed)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (0.0 <= value if zero else 0.0 < value) and (value <= 1.0 if one else value < 1.0)
    if not ok:
        interval = f"{'[' if zero else '('}0, 1{']' if one else ')'}"
        raise UsageError(f"{name}={value!r}: expected a value in {interval}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise UsageError(f"{name}={value!r}: expected true or false")
    return value
