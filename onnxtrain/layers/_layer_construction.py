"""Counting a layer's running constructors, so that `Layer.__setattr__` checks an assignment made after
construction (`layer.rate = 0.3`), never the constructors' own."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

CONSTRUCTING = "_constructing_depth"
ASSIGNED = "_settings_assigned"  # see Layer.settings_assigned


def constructing(init: Callable[..., None]) -> Callable[..., None]:
    """`init`, a layer class's `__init__`, counting in the layer how many constructors are running (a subclass'
    calls its base's): assignments are checked (`Layer.__setattr__`) once the count is back at 0. A layer made
    otherwise (`copy.copy` of a constructed one keeps the count) is checked when it has one."""

    @functools.wraps(init)
    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        depth = self.__dict__.get(CONSTRUCTING, 0)
        self.__dict__[CONSTRUCTING] = depth + 1
        try:
            init(self, *args, **kwargs)
        finally:
            self.__dict__[CONSTRUCTING] = depth

    return counting_init
