"""Headers: the case-insensitive multidict of websockets.datastructures."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Mapping, MutableMapping, Tuple, Union

__all__ = ["Headers", "HeadersLike", "MultipleValuesError"]


class MultipleValuesError(LookupError):
    """``headers[name]`` for a name that occurs more than once."""

    def __str__(self) -> str:
        if len(self.args) == 1:
            return repr(self.args[0])
        return super().__str__()


class Headers(MutableMapping[str, str]):
    """HTTP headers: names compare case-insensitively, a name may repeat.

    ``headers[name]`` returns the only value of `name` (``KeyError`` if none,
    :class:`MultipleValuesError` if several); :meth:`get_all` returns them
    all; ``headers[name] = value`` adds a value; :meth:`raw_items` yields
    ``(name, value)`` in the order they were added, names as given.
    """

    __slots__ = ("_dict", "_list")

    def __init__(self, *args: "HeadersLike", **kwargs: str) -> None:
        self._dict: Dict[str, List[str]] = {}
        self._list: List[Tuple[str, str]] = []
        self.update(*args, **kwargs)

    def __str__(self) -> str:
        return "".join(f"{key}: {value}\r\n" for key, value in self._list) + "\r\n"

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._list!r})"

    def copy(self) -> "Headers":
        copy = self.__class__()
        copy._dict = {key: list(values) for key, values in self._dict.items()}
        copy._list = list(self._list)
        return copy

    def serialize(self) -> bytes:
        return str(self).encode()

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __getitem__(self, key: str) -> str:
        value = self._dict[key.lower()]
        if len(value) == 1:
            return value[0]
        raise MultipleValuesError(key)

    def __setitem__(self, key: str, value: str) -> None:
        self._dict.setdefault(key.lower(), []).append(value)
        self._list.append((key, value))

    def __delitem__(self, key: str) -> None:
        key_lower = key.lower()
        del self._dict[key_lower]
        self._list = [(k, v) for k, v in self._list if k.lower() != key_lower]

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._dict == other._dict

    __hash__ = None  # type: ignore[assignment]

    def clear(self) -> None:
        self._dict = {}
        self._list = []

    def update(self, *args: "HeadersLike", **kwargs: str) -> None:  # type: ignore[override]
        """Add headers (never replaces): from a Headers, a mapping, or pairs."""
        args = tuple(arg.raw_items() if isinstance(arg, Headers) else arg for arg in args)
        super().update(*args, **kwargs)

    def get_all(self, key: str) -> List[str]:
        """Every value of `key`, [] when there is none."""
        return list(self._dict.get(key.lower(), []))

    def raw_items(self) -> Iterator[Tuple[str, str]]:
        """``(name, value)`` pairs in order, names as given."""
        return iter(self._list)


HeadersLike = Union[Headers, Mapping[str, str], Iterable[Tuple[str, str]]]
