"""What connection.py uses of Cython's pure-Python ``cython`` module, for
running it uncompiled where Cython is not installed: decorators that do
nothing. Compiled, Cython reads them itself and this module is not used."""
from __future__ import annotations

from typing import Callable, TypeVar

_T = TypeVar("_T")


class cython:  # noqa: N801 (the module's name)
    compiled = False

    @staticmethod
    def freelist(size: int) -> Callable[[_T], _T]:
        return lambda cls: cls

    @staticmethod
    def cclass(cls: _T) -> _T:
        return cls
