"""`computed_once`: `functools.cached_property` without its lock.

On Python 3.11, `cached_property.__get__` takes a lock held per property, so shared by every
instance of the class, on each first access (removed in 3.12: "versionchanged 3.12" at
https://docs.python.org/3/library/functools.html#functools.cached_property). For the
small records a feed builds per row (a dispensing fill's resource ids), that lock was most of
the cost of reading an id: about 2 µs per access, six per row. Here the first access stores the
value in the instance's `__dict__` (allowed on frozen dataclasses, as for `cached_property`),
which then shadows this non-data descriptor: later reads are plain attribute reads. Two threads
reading the same new instance at once may both compute the value; the functions used here are
pure, so both get the same one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
R = TypeVar("R")


class computed_once(Generic[T, R]):  # noqa: N801 (used as a decorator, like cached_property)
    def __init__(self, func: Callable[[T], R]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> computed_once[T, R]: ...

    @overload
    def __get__(self, obj: T, owner: type[Any] | None = None) -> R: ...

    def __get__(self, obj: T | None, owner: type[Any] | None = None) -> R | computed_once[T, R]:
        if obj is None:
            return self
        value = self.func(obj)
        obj.__dict__[self.name] = value
        return value
