"""Wrappers that stand for another wrapper, forwarding its attributes."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import typing as t

from ._base import DEFAULT_CHUNK_SIZE
from ._base import DownloadFile

_T = t.TypeVar("_T")


class _Forwarded(t.Generic[_T]):
    """An attribute of a :class:`_ForwardingFile`: its own value when it has
    one (``_overrides``), else the target wrapper's."""

    def __set_name__(self, owner: type[t.Any], name: str) -> None:
        self.name = name

    @t.overload
    def __get__(self, instance: None, owner: type[t.Any]) -> _Forwarded[_T]: ...
    @t.overload
    def __get__(self, instance: _ForwardingFile, owner: type[t.Any]) -> _T: ...
    def __get__(
        self, instance: _ForwardingFile | None, owner: type[t.Any]
    ) -> _T | _Forwarded[_T]:
        if instance is None:
            return self
        overrides = instance._overrides
        if self.name in overrides:
            return t.cast(_T, overrides[self.name])
        return t.cast(_T, getattr(instance._target(), self.name))

    def __set__(self, instance: _ForwardingFile, value: _T) -> None:
        if self.name in instance._overrides or not instance._writes_through:
            instance._overrides[self.name] = value
        else:
            setattr(instance._target(), self.name, value)


class _ForwardingFile(DownloadFile):
    """A wrapper that stands for another (:meth:`_target`): every attribute
    and method is the target's, but for the values in ``_overrides``.

    With ``_writes_through``, setting an attribute it has no value of its
    own for sets the target's (a response announcing the charset of
    streamed text tells the file that encodes it); else the value becomes
    its own.
    """

    _writes_through = False

    name = _Forwarded[str | None]()
    size = _Forwarded[int | None]()
    modified_time = _Forwarded[datetime.datetime | None]()
    etag = _Forwarded[str | None]()
    url = _Forwarded[str | None]()
    path = _Forwarded[str | None]()
    real_path = _Forwarded[str | None]()
    mimetype = _Forwarded[str | None]()
    encoding = _Forwarded[str | None]()
    charset = _Forwarded[str | None]()
    encoded_text = _Forwarded[bool]()
    crc32 = _Forwarded[int | None]()
    seekable = _Forwarded[bool]()
    sliceable = _Forwarded[bool]()
    _streams_text = _Forwarded[bool]()

    _overrides: dict[str, t.Any]

    def _target(self) -> DownloadFile:
        raise NotImplementedError

    def open(self) -> t.IO[bytes]:
        return self._target().open()

    def chunks(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        start: int = 0,
        stop: int | None = None,
    ) -> cabc.Iterator[bytes]:
        return self._target().chunks(chunk_size, start, stop)

    def unchanged_check(self, handle: t.IO[bytes]) -> cabc.Callable[[], bool] | None:
        return self._target().unchanged_check(handle)
