"""Helpers of the download views: keyword names, attribute checks, sync calls."""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import threading
import typing as t

from flask import current_app
from flask import Flask
from flask import has_app_context
from werkzeug.wrappers import Response

from .. import accel as _accel
from .. import conditional
from .._context import app_object
from ..files import as_index
from ..files import DownloadFile

#: django-downloadview's keywords of ``download_response`` -> this package's.
_DJANGO_KEYWORDS = {
    "file_instance": "file",
    "file_mimetype": "mimetype",
    "file_encoding": "encoding",
}

#: View attributes standing in for integer settings.
_INTEGER_SETTINGS = frozenset(("chunk_size", "max_ranges", "cache_max_age"))


def _integer_setting(name: str, value: t.Any) -> t.Any:
    """``value`` of the view attribute ``name`` as an ``int`` when it is an
    integer-like (``numpy.int64``: what :func:`operator.index` accepts, not
    ``bool``), so that it is checked and sent as the number it is; any
    other value as it is (the checks refuse it)."""
    if name in _INTEGER_SETTINGS and type(value) is not int:
        try:
            return as_index(value, name)
        except TypeError:
            return value  # refused by the checks, with their message
    return value


def _web_server_etag(file: DownloadFile, offload: _accel.Offload | None) -> str | None:
    """The ETag the web server sends ``file`` with, when it is not the app's.

    nginx answers an X-Accel-Redirect of a local file with its own ETag
    (``"<mtime hex>-<size hex>"``), whatever the app's response said: a
    client that sends that tag back in ``If-Match`` or ``If-None-Match``
    names the current file, and the app's preconditions take it as such
    (before, an ``If-Match`` with it was a 412 from the app).
    """
    if (
        offload is None
        or offload.header != "X-Accel-Redirect"
        or offload.rule is None
        or offload.rule.source_dir is None
        or file.modified_time is None
        or file.size is None
    ):
        return None
    mtime = int(conditional.as_utc(file.modified_time).timestamp())
    return f"{mtime:x}-{file.size:x}"


def _check_arguments(
    cls: type, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
) -> None:
    """Raise the :exc:`TypeError` that making ``cls(*args, **kwargs)`` would
    raise on every request, now (``as_view("name", "stray positional")``)."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - a C-level __init__
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(
            f"{cls.__name__}.as_view() got arguments its view cannot be made"
            f" with ({e}): give view attributes as keywords only."
        ) from None


@functools.lru_cache(maxsize=512)
def _is_coroutine(func: t.Callable[..., t.Any]) -> bool:
    return inspect.iscoroutinefunction(func)


def _sync(meth: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """``current_app.ensure_sync(meth)``, decided once per function.

    A plain method of an application that keeps Flask's ``ensure_sync`` is
    returned as is; a coroutine, or any method of an application that
    overrides ``ensure_sync``, goes through the application's.
    """
    func = getattr(meth, "__func__", None)
    if func is None or _is_coroutine(func):
        return current_app.ensure_sync(meth)
    app_class = type(app_object())
    if app_class.ensure_sync is not Flask.ensure_sync:
        return current_app.ensure_sync(meth)
    return meth


# flask.send_file keywords (and their pre-2.0 names) -> what to use instead.
_SEND_FILE_NAMES = {
    "as_attachment": "use 'attachment'",
    "download_name": "use 'basename'",
    "attachment_filename": "use 'basename'",
    "max_age": "use 'cache_max_age'",
    "cache_timeout": "use 'cache_max_age'",
    "path_or_file": "use 'path' (PathDownloadView) or override 'get_file'",
    "filename_or_fp": "use 'path' (PathDownloadView) or override 'get_file'",
    "conditional": "conditional requests are always answered",
    "add_etags": "the ETag comes from the file wrapper",
    "etag": "the ETag comes from the file wrapper (override 'get_file')",
    "last_modified": (
        "Last-Modified comes from the file wrapper's modified_time"
        " (override 'get_file')"
    ),
}


def _unknown_attribute_message(cls: type, key: str) -> str:
    message = (
        f"{cls.__name__}.as_view() got the keyword {key!r}, which is not an"
        f" attribute of {cls.__name__}. Only existing attributes can be set."
    )
    hint = _SEND_FILE_NAMES.get(key)
    if hint is not None:
        return f"{message} {key!r} is a flask.send_file keyword: {hint}."
    settable = [
        name
        for name in dir(cls)
        if not name.startswith("_")
        and name not in _HTTP_METHODS
        and name not in ("kwargs", "file_instance")
        and not inspect.isroutine(getattr(cls, name, None))
    ]
    close = difflib.get_close_matches(key, settable, n=1)
    if close:
        return f"{message} Did you mean {close[0]!r}?"
    return message


#: Attribute of a view function made by :meth:`DownloadView.as_view`: the
#: keywords it was given (read by :mod:`flask_download.testing`).
VIEW_ATTRIBUTES = "_flask_download_attributes"

_HTTP_METHODS = frozenset(
    ("get", "head", "post", "put", "patch", "delete", "options", "trace")
)


_R = t.TypeVar("_R")
_C = t.TypeVar("_C", bound=Response)


def as_app_response(response: _R, app_class: type[Response] | None = None) -> _R:
    """``response`` made an instance of ``app.response_class``, as
    ``send_file``'s answers are.

    Flask coerces a view's answer of another class with
    ``app.response_class.force_type``, which swaps its class for the app's
    and with it the download's own body (an empty body under a
    ``Content-Length`` of the file's size). The answer's class comes first,
    so what sends the body is unchanged; the app's class adds its own
    members.
    """
    made: object = response
    if isinstance(made, tuple) and made:
        # (response, status, headers): Flask coerces the response alike.
        made = made[0]
    if not isinstance(made, Response):
        return response  # a view's str or dict: Flask makes it
    if app_class is None:
        app_class = current_app.response_class
    if not isinstance(made, app_class):
        mixed = _mixed_class(type(made), app_class)
        # Another object layout (__slots__) refuses the class: Flask's own
        # coercion applies.
        if mixed is not None:
            with contextlib.suppress(TypeError):
                made.__class__ = mixed
    return response


def app_response_class(
    cls: type[_C], app_class: type[Response] | None = None
) -> type[_C]:
    """``cls``, or a class that is both ``cls`` and ``app.response_class``
    when ``cls`` is not one already (its methods first, then the app's
    class, whose ``__init__`` runs too). ``app_class``: the app's, when the
    caller has it (one look-up per request)."""
    if app_class is None:
        if not has_app_context():
            return cls
        app_class = current_app.response_class
    if issubclass(cls, app_class):
        return cls
    return t.cast("type[_C]", _mixed_class(cls, app_class) or cls)


#: The attribute of an app's response class holding the classes
#: :func:`_mixed_class` made with it, by view response class. Kept on the
#: app's class, they live as long as it does: an app factory that defines
#: its response class per app does not pile up classes.
_MIXED = "_flask_download_mixed"
_MIXING = threading.Lock()


def _mixed_class(
    response_class: type[Response], app_class: type[Response]
) -> type[Response] | None:
    made = t.cast(
        "dict[type[Response], type[Response] | None] | None",
        app_class.__dict__.get(_MIXED),
    )
    if made is not None:
        try:
            return made[response_class]
        except KeyError:
            pass
    mixed: type[Response] | None
    if issubclass(app_class, response_class):
        # A plain answer (412) of a class the app's extends: the app's
        # class is all it needs, as force_type would make it.
        mixed = app_class
    else:
        try:
            mixed = type(
                response_class.__name__,
                (response_class, app_class),
                {
                    "__module__": response_class.__module__,
                    # Its name is response_class's: pickle (a response cache)
                    # would find that class, not this one.
                    "__reduce_ex__": _reduce_mixed,
                },
            )
        except TypeError:
            # No consistent method order: Flask's own coercion applies.
            mixed = None
    with _MIXING:
        # Two threads may both have made a class: the first one kept wins.
        made = app_class.__dict__.get(_MIXED)
        if made is None:
            made = {}
            setattr(app_class, _MIXED, made)
        return made.setdefault(response_class, mixed)


def _reduce_mixed(self: Response, protocol: t.SupportsIndex) -> tuple[t.Any, ...]:
    # Pickled (and copied) as its two classes and its state: the one its
    # classes' __getstate__ gives (an app class may leave out what cannot be
    # pickled, and put it back in __setstate__, which pickle calls).
    getstate = getattr(self, "__getstate__", None)
    state = self.__dict__ if getstate is None else getstate()
    return (_new_mixed, type(self).__bases__, state)


def _new_mixed(response_class: type[Response], app_class: type[Response]) -> Response:
    """An empty instance of the class mixed from the two (unpickling)."""
    cls = _mixed_class(response_class, app_class) or response_class
    return cls.__new__(cls)
