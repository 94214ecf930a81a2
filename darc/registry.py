"""A tiny name -> factory registry, in the spirit of timm's ``register_model``.

Every pluggable family in darc (models, datasets, alternatives, cost models) is a
:class:`Registry`; adding a member is decorating one function.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of factories with helpful errors for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._table: dict[str, Callable[..., T]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@REG.register()`` or ``@REG.register("name")``."""

        def deco(fn: Callable[..., T]) -> Callable[..., T]:
            key = name or fn.__name__
            if key in self._table:
                raise KeyError(f"{self.kind} {key!r} is already registered")
            self._table[key] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; a KeyError listing the choices otherwise."""
        try:
            return self._table[name]
        except KeyError:
            choices = ", ".join(sorted(self._table)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {choices}") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Call the factory registered as ``name``."""
        return self.get(name)(*args, **kwargs)

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        return sorted(k for k in self._table if fnmatch.fnmatch(k, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __len__(self) -> int:
        return len(self._table)
