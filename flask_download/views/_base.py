"""The download API: :class:`DownloadMixin`, and :class:`DownloadView` built on it."""

from __future__ import annotations

import collections.abc as cabc
import copy
import datetime
import functools
import inspect
import os
import typing as t

from flask import abort
from flask import has_request_context
from flask import request
from flask import Response
from flask.views import MethodView

from .. import accel as _accel
from .. import conditional
from .. import ranges as _ranges
from .._context import app_object
from .._context import request_object
from ..exceptions import ConfigurationError
from ..exceptions import FileNotFound
from ..files import DownloadFile
from ..response import codec_charset
from ..response import DEFAULT_CONTENT_SECURITY_POLICY
from ..response import DownloadResponse
from ..response import media_type_charset
from ..response import NotModifiedResponse
from ..response import validator_headers
from ..settings import check_view_attribute
from ..settings import get_settings
from ..settings import Settings
from ..settings import VIEW_SETTING_ATTRIBUTES
from ..signing import check_signature
from ._helpers import _check_arguments
from ._helpers import _DJANGO_KEYWORDS
from ._helpers import _HTTP_METHODS
from ._helpers import _integer_setting
from ._helpers import _sync
from ._helpers import _unknown_attribute_message
from ._helpers import _web_server_etag
from ._helpers import app_response_class
from ._helpers import as_app_response
from ._helpers import VIEW_ATTRIBUTES

if t.TYPE_CHECKING:
    from flask import typing as ft
    from flask.typing import RouteCallable


class DownloadMixin:
    """The download API ported from django-downloadview, for any Flask view.

    Override :meth:`get_file` to return a :class:`~flask_download.DownloadFile`
    and call :meth:`render_to_response`: it answers 404 for a missing file,
    304/412 for conditional requests, 206/416 for ranges, else streams the
    file. Every ``get_*`` method and response factory can be overridden.

    Attributes can be set per view with ``as_view(name, **attrs)``.
    """

    #: The response class :meth:`download_response` builds.
    response_class: type[DownloadResponse] = DownloadResponse
    #: ``True``: ``Content-Disposition: attachment`` (save); ``False``: inline.
    attachment: bool = True
    #: The client-side file name; ``None`` uses the file's own name.
    basename: str | None = None
    #: The media type; ``None`` guesses it from the name with :mod:`mimetypes`.
    mimetype: str | None = None
    #: The ``Content-Encoding``; ``None`` uses the file's or guesses it.
    encoding: str | None = None
    #: The charset of ``text/*`` files; ``None`` uses the file's, else UTF-8.
    charset: str | None = None
    #: ``Cache-Control`` max-age in seconds; ``None`` uses ``DOWNLOAD_CACHE_MAX_AGE``.
    cache_max_age: int | None = None
    #: A full ``Cache-Control`` value, such as ``"private, max-age=60"``;
    #: wins over :attr:`cache_max_age`.
    cache_control: str | None = None
    #: ``Content-Security-Policy`` of inline responses of active types (HTML,
    #: XHTML, SVG, XML), so that an uploaded page or image runs no script in
    #: the site's origin; ``None`` sends none. Attachments never get it.
    content_security_policy: str | None = DEFAULT_CONTENT_SECURITY_POLICY
    #: Bytes per chunk; ``None`` uses ``DOWNLOAD_CHUNK_SIZE``.
    chunk_size: int | None = None
    #: Most ranges served in one response; ``None`` uses ``DOWNLOAD_MAX_RANGES``.
    max_ranges: int | None = None
    #: Offload backend: ``None`` uses ``DOWNLOAD_ACCEL``, ``False`` never
    #: offloads this view, or ``"nginx"``, ``"apache"``, ``"lighttpd"``; a
    #: backend named here also replaces the ``backend`` of the
    #: ``DOWNLOAD_ACCEL_RULES`` rules (the server in front of this view).
    accel: str | t.Literal[False] | None = None
    #: Offload rules (mappings or :class:`~flask_download.AccelRule`);
    #: ``None`` uses ``DOWNLOAD_ACCEL_RULES``.
    accel_rules: t.Sequence[t.Any] | None = None
    #: ``True``: only links made with :func:`~flask_download.signed_url_for`
    #: open this view (missing or tampered signature 403, expired 410),
    #: checked before the file is looked up: by a :class:`DownloadView` when
    #: the request is dispatched (every method), by :meth:`render_to_response`
    #: when the mixin is used alone.
    signed: bool = False

    #: The file of the current request, once :meth:`get_file` returned it.
    file: DownloadFile

    @property
    def file_instance(self) -> DownloadFile:
        """:attr:`file` under its django-downloadview name, for ported code."""
        return self.file

    @file_instance.setter
    def file_instance(self, value: DownloadFile) -> None:
        self.file = value

    def __init__(self, **attrs: t.Any) -> None:
        for key, value in attrs.items():
            setattr(self, key, value)

    @functools.cached_property
    def kwargs(self) -> dict[str, t.Any]:
        """The URL variables of the current request.

        Set by :class:`DownloadView` when it dispatches the request; a mixin
        used alone (in a function view) reads them from
        :attr:`flask.Request.view_args`.
        """
        if not has_request_context():
            return {}
        return dict(request.view_args or {})

    # -- what to send ---------------------------------------------------------

    def get_file(self) -> DownloadFile:
        """Return the file to send.

        :raises FileNotFound: the file does not exist (answered with 404).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement 'get_file' and return"
            " a DownloadFile."
        )

    def get_basename(self) -> str | None:
        """The client-side file name: :attr:`basename` by default."""
        return self.basename

    def get_mimetype(self) -> str | None:
        """The media type: :attr:`mimetype` by default (``None``: guessed)."""
        return self.mimetype

    def get_encoding(self) -> str | None:
        """The ``Content-Encoding``: :attr:`encoding` by default."""
        return self.encoding

    def get_charset(self) -> str | None:
        """The charset of ``text/*`` files: :attr:`charset` by default."""
        return self.charset

    def _text_charset(self) -> str | None:
        # The charset text made by the view is encoded in, as it will be
        # announced: the one the mimetype names (it wins, as for every
        # source), if it is a text encoding, else get_charset().
        named = codec_charset(media_type_charset(self.get_mimetype() or ""))
        return named or self.get_charset()

    def get_cache_control(self) -> str:
        """The ``Cache-Control`` value of downloads and 304 responses."""
        if self.cache_control is not None:
            return self.cache_control
        max_age = self._setting("cache_max_age")
        return "no-cache" if max_age is None else f"max-age={max_age}"

    def _settings(self) -> Settings:
        settings: Settings | None = getattr(self, "_cached_settings", None)
        if settings is None:
            settings = self._cached_settings = get_settings()
        return settings

    def _setting(self, name: str) -> t.Any:
        value = getattr(self, name)
        if value is None:
            return getattr(self._settings(), name)
        return _integer_setting(name, value)

    # -- conditional requests -------------------------------------------------

    def was_modified_since(
        self, file_instance: DownloadFile, since: datetime.datetime
    ) -> bool:
        """Whether ``file_instance`` changed after ``since`` (``If-Modified-Since``).

        Asks the wrapper's own ``was_modified_since`` if it has one, else
        compares its ``modified_time`` at one-second resolution (HTTP dates
        have no fractions). A file that cannot tell counts as modified.

        :param since: an aware UTC datetime.
        """
        try:
            result = file_instance.was_modified_since(since)  # type: ignore[attr-defined]
        except (AttributeError, NotImplementedError):
            result = None
        if result is not None:
            # The wrapper's answer as it gave it (django-downloadview does the
            # same; callers only test its truth).
            return t.cast(bool, result)
        try:
            modified = file_instance.modified_time
        except (AttributeError, NotImplementedError):
            return True
        if modified is None:
            return True
        # A naive datetime is UTC, as everywhere else in this package.
        modified = conditional.as_utc(modified)
        # Whole seconds compared as datetimes: int(timestamp()) would round
        # the fraction of a date before 1970 up, not down.
        since = conditional.as_utc(since)
        return modified.replace(microsecond=0) > since.replace(microsecond=0)

    def _validators(self, file: DownloadFile) -> dict[str, str]:
        # RFC 9110 §15.4.5: a 304 carries the validators and Cache-Control
        # the 200 would have had.
        return dict(validator_headers(file, self.get_cache_control()))

    def not_modified_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        """Return a 304 Not Modified response with no body.

        :param kwargs: ``headers`` holds the validators to send.
        """
        return NotModifiedResponse(status=304, headers=kwargs.get("headers"))

    def precondition_failed_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        """Return a 412 Precondition Failed response with no body (and so
        no ``Content-Type``)."""
        response = Response(b"", status=412, headers=kwargs.get("headers"))
        response.headers.pop("Content-Type", None)
        return response

    # -- responses ------------------------------------------------------------

    def download_response(self, *args: t.Any, **kwargs: t.Any) -> DownloadResponse:
        """Build the download response for :attr:`file`.

        Keyword arguments go to :attr:`response_class` and win over the
        view's: ``attachment``, ``basename``, ``mimetype``, ``encoding``,
        ``charset``, ``ranges``, ``chunk_size``, ``cache_control``,
        ``content_security_policy``. A file
        matching an offload rule (:attr:`accel`) gives an empty-bodied
        :class:`~flask_download.AccelResponse` for the web server instead.
        """
        for django_name, name in _DJANGO_KEYWORDS.items():
            # The keywords of django-downloadview's download_response, so a
            # ported override calling super() with them works unchanged.
            if django_name in kwargs:
                if name in kwargs:
                    raise TypeError(
                        f"download_response() got both {name!r} and"
                        f" {django_name!r} (its django-downloadview name)."
                    )
                kwargs[name] = kwargs.pop(django_name)
        file = kwargs.pop("file", None)
        if file is None:
            file = self.file
        options = {
            "attachment": self.attachment,
            "basename": self.get_basename(),
            "mimetype": self.get_mimetype(),
            "encoding": self.get_encoding(),
            "charset": self.get_charset(),
            "chunk_size": self._setting("chunk_size"),
            "cache_control": self.get_cache_control(),
            "content_security_policy": self.content_security_policy,
        }
        options.update(kwargs)  # the caller's keywords win
        kwargs = options
        kwargs["chunk_size"] = _integer_setting("chunk_size", kwargs["chunk_size"])
        offload = self._find_offload(file)
        if offload is not None:
            # The web server answers Range itself, from the request's header.
            kwargs["ranges"] = None
        elif "ranges" not in kwargs:
            environ = request_object().environ
            range_header = environ.get("HTTP_RANGE")
            ranges = (
                None
                if range_header is None
                else _ranges.evaluate_range(
                    range_header=range_header,
                    if_range=environ.get("HTTP_IF_RANGE"),
                    size=file.size if file.seekable else None,
                    etag=file.etag,
                    # A date that does not change with every change of the
                    # content (an archive's newest member) is no validator
                    # for If-Range.
                    last_modified=None
                    if getattr(file, "weak_modified_time", False)
                    else file.modified_time,
                    max_ranges=self._setting("max_ranges"),
                    method=environ["REQUEST_METHOD"],
                )
            )
            if ranges and ranges is not _ranges.UNSATISFIABLE:
                # A source whose ranges may cost far more than they send (an
                # archive's CRC-32s) says so: the whole file is sent instead.
                too_costly = getattr(file, "range_too_costly", None)
                if too_costly is not None and too_costly(ranges):
                    ranges = None
            kwargs["ranges"] = ranges
        # The app's class, as dispatch_request found it (else looked up).
        made = app_response_class(self.response_class, self.__dict__.get("_app_class"))
        response = made(file, *args, **kwargs)
        return _accel.apply_offload(response, offload)

    def _find_offload(self, file: DownloadFile) -> _accel.Offload | None:
        # Offload (issue 5): the view's accel/accel_rules, else the config.
        return _accel.resolve_offload(
            file, self.accel, self.accel_rules, self._settings(), owner=type(self)
        )

    def file_not_found_response(self) -> Response:
        """Answer a missing file: ``abort(404)`` by default.

        An override may return a response instead.
        """
        abort(404)

    def file_response(self, file: DownloadFile) -> Response | None:
        """Answer the request for ``file`` early, or return ``None`` to go on.

        Called by :meth:`render_to_response` with the file :meth:`get_file`
        returned, before preconditions are evaluated. Return a response to
        send it instead of the download (a redirect to another location of
        the file, say); ``file`` is then closed. A
        :exc:`~flask_download.FileNotFound` raised here answers 404.

        :return: ``None`` by default.
        """
        return None

    def evaluate_preconditions(self, file: DownloadFile) -> int | None:
        """Decide the conditional request for ``file``.

        By default the request's ``If-Match``, ``If-None-Match``,
        ``If-Modified-Since`` and ``If-Unmodified-Since`` are evaluated here,
        in RFC 9110 §13.2.2 order, against the file's ``etag`` and
        ``modified_time`` (and :meth:`was_modified_since`). Override it when
        someone else decides, such as the server a file is relayed from.

        :return: :data:`~flask_download.conditional.NOT_MODIFIED` (304,
            answered by :meth:`not_modified_response`),
            :data:`~flask_download.conditional.PRECONDITION_FAILED` (412,
            answered by :meth:`precondition_failed_response`), or ``None``
            to send the file (:meth:`download_response`).
        """
        # The WSGI environ directly: Headers.get raises and catches a
        # KeyError for each absent header, on the hot path.
        environ = request_object().environ
        if_match = environ.get("HTTP_IF_MATCH")
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
        if_unmodified_since = environ.get("HTTP_IF_UNMODIFIED_SINCE")
        if (
            if_match is None
            and if_none_match is None
            and if_modified_since is None
            and if_unmodified_since is None
        ):
            return None  # not a conditional request: nothing to decide
        own = file.etag if isinstance(file.etag, str) and file.etag else "\0"
        if (if_match is not None and own not in if_match) or (
            if_none_match is not None and own not in if_none_match
        ):
            # The tag a web server sends the file with is current too (looked
            # for only when the header does not name the app's own tag).
            tag = _web_server_etag(file, self._find_offload(file))
            if tag is not None:
                if if_match and conditional.strong_etag_matches(if_match, tag):
                    if_match = "*"
                if if_none_match and conditional.weak_etag_matches(if_none_match, tag):
                    if_none_match = "*"
        return conditional.evaluate_preconditions(
            method=environ["REQUEST_METHOD"],
            if_match=if_match,
            if_none_match=if_none_match,
            if_modified_since=if_modified_since,
            if_unmodified_since=if_unmodified_since,
            etag=file.etag,
            last_modified=file.modified_time,
            was_modified_since=lambda since: self.was_modified_since(file, since),
        )

    def render_to_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        """Answer the request: 404, 304, 412, or :meth:`download_response`.

        Calls :meth:`get_file` once, then :meth:`file_response` (an early
        answer), then :meth:`evaluate_preconditions` before the body is
        touched; ranges are evaluated after them, by
        :meth:`download_response`. The file is closed unless the download
        response takes it.

        With :attr:`signed`, the link's signature is checked first when the
        mixin is used alone; a :class:`DownloadView` checks it when the
        request is dispatched, before any method runs.
        """
        if self.signed and not isinstance(self, DownloadView):
            check_signature()  # before get_file: no hint whether the file exists
        if isinstance(self, DownloadView):
            return self._render(*args, **kwargs)  # dispatch_request adapts it
        return as_app_response(self._render(*args, **kwargs))

    def _render(self, *args: t.Any, **kwargs: t.Any) -> Response:
        try:
            self.file = file = self.get_file()
        except FileNotFound:
            return self.file_not_found_response()
        if file is None:
            # Else an AttributeError on None, far from the mistake.
            raise TypeError(
                f"{type(self).__name__}.get_file() returned None: return a"
                " DownloadFile, or raise FileNotFound for a missing file (404)."
            )
        try:
            early = self.file_response(file)
            if early is not None:
                file.close()
                return early
            decision = self.evaluate_preconditions(file)
            if decision is None:
                # The response owns the file from here and closes it.
                return self.download_response(*args, **kwargs)
            if decision == conditional.NOT_MODIFIED:
                response = self.not_modified_response(headers=self._validators(file))
            else:
                response = self.precondition_failed_response()
        except FileNotFound:
            file.close()
            return self.file_not_found_response()
        except BaseException:
            file.close()
            raise
        file.close()
        return response


class DownloadView(DownloadMixin, MethodView):
    """A :class:`~flask.views.MethodView` that serves
    :meth:`~flask_download.DownloadMixin.get_file`.

    ``HEAD`` is answered like ``GET`` without a body. URL variables are in
    :attr:`~flask_download.DownloadMixin.kwargs`. Subclass it and override
    :meth:`~flask_download.DownloadMixin.get_file`, or use one of the ready
    views.
    """

    @classmethod
    def as_view(
        cls, name: str, *class_args: t.Any, **class_kwargs: t.Any
    ) -> RouteCallable:
        """Make a view function; each keyword sets that attribute on the view.

        ``PathDownloadView.as_view("readme", path="README.md", attachment=False)``.
        The class itself is not changed. The attributes Flask reads when it
        makes the function (``decorators``, ``methods``,
        ``provide_automatic_options``, ``init_every_request``) may be given
        too. With ``init_every_request = False`` the view is made once and
        each request gets a shallow copy of it, since a download view keeps
        the request's URL variables and file on ``self``.

        :raises TypeError: a keyword names no attribute of the class (the
            message suggests the closest attribute, and the attribute to use
            for a :func:`flask.send_file` keyword) or a property without a
            setter, or a positional argument the class cannot take.
        :raises ConfigurationError: an unknown ``accel`` backend or an invalid
            ``accel_rules`` rule (keyword or class attribute).
        """
        for key in class_kwargs:
            if (
                key.startswith("_")
                or key in _HTTP_METHODS
                or key in ("kwargs", "file_instance")  # set per request
                or not hasattr(cls, key)
            ):
                raise TypeError(_unknown_attribute_message(cls, key))
            found = inspect.getattr_static(cls, key)
            if isinstance(found, property) and found.fset is None:
                # Found per request, the instance could not be made at all.
                raise TypeError(
                    f"{cls.__name__}.as_view() got the keyword {key!r}, but"
                    f" {cls.__name__}.{key} is a property without a setter:"
                    " override it in a subclass instead."
                )
        _check_arguments(cls, class_args, class_kwargs)
        cls._check_attributes(class_kwargs)
        # Offload (issue 5): fail now, not on the first request; parsed rules
        # are cached for the requests.
        _accel.check_offload(
            cls,
            class_kwargs.get("accel", cls.accel),
            class_kwargs.get("accel_rules", cls.accel_rules),
        )
        # Flask reads these from the class when it makes the view function;
        # a keyword wins over the class attribute here, as for every other
        # attribute (``decorators=[login_required]`` must not be dropped).
        decorators = class_kwargs.get("decorators", cls.decorators)
        # Flask's view function, without its two ensure_sync() calls per
        # request (an inspect.iscoroutinefunction each) for plain methods:
        # whether a function is a coroutine is decided once per function.
        if class_kwargs.get("init_every_request", cls.init_every_request):

            def view(**kwargs: t.Any) -> ft.ResponseReturnValue:
                self = view.view_class(*class_args, **class_kwargs)  # type: ignore[attr-defined]
                return _sync(self.dispatch_request)(**kwargs)  # type: ignore[no-any-return]

        else:
            # Flask would share one instance between requests, but a download
            # view keeps the request's URL variables and file on ``self``:
            # two concurrent requests would serve each other's file. The
            # instance is made once (its __init__ runs once, as asked) and
            # each request gets a shallow copy of it.
            prototype = cls(*class_args, **class_kwargs)

            def view(**kwargs: t.Any) -> ft.ResponseReturnValue:
                self = copy.copy(prototype)
                return _sync(self.dispatch_request)(**kwargs)  # type: ignore[no-any-return]

        if decorators:
            view.__name__ = name
            view.__module__ = cls.__module__
            for decorator in decorators:
                view = decorator(view)
        view.view_class = cls  # type: ignore[attr-defined]
        setattr(view, VIEW_ATTRIBUTES, class_kwargs)
        view.__name__ = name
        view.__doc__ = cls.__doc__
        view.__module__ = cls.__module__
        view.methods = class_kwargs.get("methods", cls.methods)  # type: ignore[attr-defined]
        view.provide_automatic_options = class_kwargs.get(  # type: ignore[attr-defined]
            "provide_automatic_options", cls.provide_automatic_options
        )
        return view

    @classmethod
    def _check_attributes(cls, attributes: cabc.Mapping[str, t.Any]) -> None:
        # Values that stand in for settings are checked as the settings are,
        # at as_view time (the class's own and the keywords).
        for name in VIEW_SETTING_ATTRIBUTES:
            value = attributes.get(name, getattr(cls, name, None))
            if hasattr(type(value), "__get__"):
                continue  # a property: known per request only
            check_view_attribute(cls.__name__, name, _integer_setting(name, value))
        root = attributes.get("root", getattr(cls, "root", None))
        if isinstance(root, (str, bytes, os.PathLike)) and not os.fspath(root):
            raise ConfigurationError(
                f"{cls.__name__}.root is an empty string: set it to the"
                " directory to serve, or to None (DOWNLOAD_ROOT)."
            )

    def dispatch_request(self, **kwargs: t.Any) -> Response:
        self.kwargs = kwargs
        if self.signed:
            check_signature()  # before any method runs, overrides included
        # MethodView.dispatch_request, with one look-up of the method.
        method = request_object().method
        meth = getattr(self, method.lower(), None)
        if meth is None and method == "HEAD":
            meth = getattr(self, "get", None)
        assert meth is not None, f"Unimplemented method {method!r}"
        # Of the app's response class: Flask would swap the class of any
        # other, and with it the download's body (as_app_response).
        self._app_class = app_class = app_object().response_class
        try:
            return as_app_response(t.cast(Response, _sync(meth)(**kwargs)), app_class)
        except FileNotFound:
            # Raised outside render_to_response, by a method that calls
            # get_file() itself (an override of get() that checks the file
            # first): still a missing file, not a 500.
            return self.file_not_found_response()

    def get(self, **kwargs: t.Any) -> Response:
        """Answer ``GET`` (and ``HEAD``) with
        :meth:`~flask_download.DownloadMixin.render_to_response`."""
        return self.render_to_response()


#: Alias of :class:`DownloadView`, for code ported from django-downloadview.
BaseDownloadView = DownloadView
