"""How WSListener subclasses are built.

Python subclasses are created through ``object.__new__`` (picows replaces
Cython's ``tp_new`` for them), so that on CPython 3.11+ the instances have
inline attribute values and the interpreter specializes ``self.x`` in the
listener's methods; Cython's ``tp_new`` alone leaves every such access a
generic dict lookup. The vtable must still be set: cpdef methods dispatch
through it from C.
"""
from __future__ import annotations

import abc
import dis
import platform
import sys

import pytest

from picows import WSListener


class Counting(WSListener):
    def __init__(self, start: int = 0) -> None:
        self.count = start

    def bump(self) -> int:
        for _ in range(50):
            self.count = self.count + 1
        return self.count


class Slotted(WSListener):
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def test_base_listener_still_works():
    listener = WSListener()
    assert type(listener) is WSListener
    # cpdef methods of the base run (and return None) through the vtable.
    assert listener.on_ws_connected(None) is None
    assert listener.pause_writing() is None


def test_python_subclass_constructor_arguments_and_attributes():
    listener = Counting(5)
    assert listener.count == 5
    assert listener.bump() == 55
    listener.extra = "x"
    assert vars(listener) == {"count": 55, "extra": "x"}
    # Inherited cpdef methods dispatch through the vtable set by picows.
    assert listener.on_ws_disconnected(None) is None
    assert isinstance(listener, WSListener)


def test_subclass_of_subclass_and_slots():
    class Deeper(Counting):
        pass

    assert Deeper(1).bump() == 51
    slotted = Slotted()
    slotted.count = 3
    assert slotted.count == 3
    with pytest.raises(AttributeError):
        slotted.other = 1


def test_abstract_subclass_cannot_be_instantiated():
    class Abstract(WSListener, metaclass=abc.ABCMeta):
        @abc.abstractmethod
        def handle(self) -> None: ...

    with pytest.raises(TypeError):
        Abstract()


# CPython 3.13 keeps instance attributes inline (which LOAD_ATTR and
# STORE_ATTR specialize on) only for classes whose C base is object-sized;
# WSListener carries a vtable pointer, so on 3.13 its Python subclasses keep
# a plain dict and these instructions stay generic (measured on 3.13.0).
@pytest.mark.skipif(platform.python_implementation() != "CPython"
                    or not (3, 11) <= sys.version_info < (3, 13),
                    reason="specialized on CPython 3.11 and 3.12 only")
def test_attribute_access_is_specialized():
    # A class of its own: the code object's specialization state must not
    # depend on what other tests did with their instances.
    class Fresh(WSListener):
        def __init__(self) -> None:
            self.count = 0

        def bump(self) -> int:
            for _ in range(50):
                self.count = self.count + 1
            return self.count

    listener = Fresh()
    for _ in range(10):
        listener.bump()
    ops = [ins.opname for ins in dis.get_instructions(Fresh.bump, adaptive=True)
           if "ATTR" in ins.opname]
    assert ops, "no attribute instructions found"
    # Specialized forms are LOAD_ATTR_<KIND> / STORE_ATTR_<KIND>; the
    # unspecialized ones stay LOAD_ATTR / STORE_ATTR (or *_ADAPTIVE on 3.11).
    unspecialized = [op for op in ops
                     if op in ("LOAD_ATTR", "STORE_ATTR") or op.endswith("_ADAPTIVE")]
    assert not unspecialized, ops
