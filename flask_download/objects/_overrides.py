"""Whether a view class overrides a method that may read the row."""

from __future__ import annotations

import inspect
import types
import typing as t
import weakref

#: Methods that never see the row: overriding them keeps the row fast path.
_ROW_SAFE = frozenset(("get_query", "get_session", "get_model", "release_session"))


def _methods(cls: type[t.Any]) -> dict[str, t.Any]:
    found = {}
    for name in dir(cls):
        if name.startswith("__"):
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, (types.FunctionType, classmethod, staticmethod)):
            found[name] = static
    return found


_BASE_METHODS: dict[str, t.Any] | None = None
#: Per view class: whether it overrides a method that may read the row.
_OVERRIDDEN: weakref.WeakKeyDictionary[type[t.Any], bool] = weakref.WeakKeyDictionary()


def _readers() -> dict[str, t.Any]:
    global _BASE_METHODS
    if _BASE_METHODS is None:
        # Imported here: the view module imports this one (the class is
        # defined by the time a request asks).
        from ._view import ObjectDownloadView

        methods = _methods(ObjectDownloadView)
        _BASE_METHODS = {k: v for k, v in methods.items() if k not in _ROW_SAFE}
    return _BASE_METHODS


def _overridden(cls: type[t.Any]) -> bool:
    """Whether ``cls`` overrides a method that may read ``self.object``."""
    found = _OVERRIDDEN.get(cls)
    if found is None:
        base = _readers()
        found = _OVERRIDDEN[cls] = any(
            inspect.getattr_static(cls, name) is not method
            for name, method in base.items()
        )
    return found
