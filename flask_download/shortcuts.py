"""Function views: :func:`send_download`, the counterpart of ``flask.send_file``.

A function view returns ``send_download(...)`` where it returned
``send_file(...)`` or ``send_from_directory(...)``. The answer comes from the
download views' own engine (a :class:`~flask_download.PathDownloadView` or
:class:`~flask_download.DownloadView` made for the call): preconditions in
RFC 9110 order, ranges, ``HEAD``, offload rules and signals behave exactly
as they do for a class-based view.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import os
import time
import typing as t

from flask import current_app
from flask import Response
from werkzeug.http import http_date

from ._grammar import valid_opaque_tag
from .conditional import as_utc
from .exceptions import ConfigurationError
from .files import _ForwardingFile
from .files import _local_file
from .files import _text_encoding
from .files import DownloadFile
from .files import VirtualFile
from .response import DownloadResponse
from .views import DownloadView
from .views import PathDownloadView
from .views._helpers import as_app_response

#: What :func:`send_download` sends: a path, content, or a wrapper.
Source = t.Union[
    str,
    "os.PathLike[str]",
    bytes,
    t.IO[bytes],
    t.IO[str],
    DownloadFile,
]


def send_download(
    source: Source,
    *,
    root: str | os.PathLike[str] | None = None,
    basename: str | None = None,
    attachment: bool = True,
    mimetype: str | None = None,
    encoding: str | None = None,
    charset: str | None = None,
    cache_control: str | None = None,
    cache_max_age: int | None = None,
    as_attachment: bool | None = None,
    download_name: str | None = None,
    max_age: int | cabc.Callable[[str | None], int | None] | None = None,
    conditional: bool = True,
    etag: bool | str = True,
    last_modified: datetime.datetime | datetime.date | int | float | None = None,
) -> Response:
    """Answer the current request with a download, from a function view.

    The same answer a download view gives: ``Content-Type``,
    ``Content-Disposition``, validators, 304/412 in RFC 9110 §13.2.2 order,
    206/416 for ``Range`` (``GET`` only), ``HEAD`` without a body, offload
    by ``DOWNLOAD_ACCEL_RULES`` (or the :func:`~flask_download.offload`
    decorator around the view) and the download signals::

        @app.route("/reports/<int:id>")
        def report(id):
            return send_download(f"reports/{id}.pdf", attachment=False)

        @app.route("/uploads/<path:name>")
        def upload(name):
            return send_download(name, root="uploads")

    A missing file (or a ``root`` path that leaves the root, or a ``root``
    that does not exist) answers 404.

    ``flask.send_file``'s keywords are accepted with their Flask meaning, so
    porting a call is a rename: ``as_attachment`` (``attachment``),
    ``download_name`` (``basename``), ``mimetype``, ``max_age``,
    ``conditional``, ``etag`` and ``last_modified``. Unlike ``send_file``,
    the default is an attachment (pass ``attachment=False`` for inline), a
    file-like object without a name is sent as
    ``application/octet-stream``, and text is accepted. As with
    ``send_file``, the answer is an instance of ``app.response_class``.

    :param source: a trusted path (``str`` or :class:`os.PathLike`; relative
        to ``app.root_path``), ``bytes``, a binary or text file-like object
        (read from its current position and closed with the response, as
        ``send_file`` does; a file on the disk opened in binary mode goes to
        the server's ``wsgi.file_wrapper``, ``sendfile``, whole or as one
        range), or a :class:`~flask_download.DownloadFile`.
        With ``root``, a path from the client instead.
    :param root: the directory an untrusted relative ``source`` is confined
        to, symbolic links included (``send_from_directory``); relative to
        ``app.root_path``. A ``root`` that does not exist (yet) or is not a
        directory holds no file: 404, as with ``send_from_directory``.
        Never take ``root`` itself from the client.
    :param basename: the client-side file name; defaults to the path's last
        part or the wrapper's name.
    :param attachment: ``Content-Disposition: attachment`` (save) or, when
        ``False``, ``inline``.
    :param mimetype: the media type; guessed from the name when ``None``.
    :param encoding: the ``Content-Encoding`` of the bytes, such as ``gzip``.
    :param charset: the charset of ``text/*`` types, and the encoding of
        text content (default UTF-8).
    :param cache_control: a full ``Cache-Control`` value; wins over the
        other cache arguments.
    :param cache_max_age: ``Cache-Control: max-age`` in seconds (without
        ``Expires``); wins over ``max_age``.
    :param as_attachment: ``send_file``'s name of ``attachment``.
    :param download_name: ``send_file``'s name of ``basename``.
    :param max_age: ``send_file``'s cache lifetime, with its headers:
        ``N`` seconds give ``Cache-Control: public, max-age=N``, ``0`` gives
        ``no-cache, max-age=0``, both with ``Expires`` (a negative number
        counts as ``0``). A callable gets what ``send_file`` passes: the
        path of the file (joined to ``app.root_path`` and ``root``), a
        wrapper's ``path``, or ``None`` for content and file-like objects;
        it returns seconds or ``None``. Without any cache argument,
        ``DOWNLOAD_CACHE_MAX_AGE`` applies, else Flask's
        ``SEND_FILE_MAX_AGE_DEFAULT`` (``app.get_send_file_max_age``) as
        ``private, max-age=N``: a view's download may be one user's.
    :param conditional: ``False`` ignores the request's conditional and
        ``Range`` headers (always a full 200).
    :param etag: ``True``: the file's own strong ETag; ``False``: none; a
        string: that entity-tag (bare or quoted).
    :param last_modified: the ``Last-Modified`` time instead of the file's:
        a :class:`~datetime.datetime` (naive means UTC), a
        :class:`~datetime.date` (its midnight, UTC) or a POSIX timestamp.
        ``etag`` and ``last_modified`` apply to this response only: a
        :class:`~flask_download.DownloadFile` passed as ``source`` is never
        changed.
    :raises TypeError: a ``source`` of another type.
    :raises ConfigurationError: ``root`` is empty (``""`` would be the
        application's own directory).
    :raises ValueError: an ``etag`` that cannot go into a header, or a
        ``last_modified`` timestamp out of range (NaN, beyond year 9999).
        A file-like ``source`` is closed before any of these is raised.
    """
    if as_attachment is not None:
        attachment = as_attachment
    if download_name is not None:
        basename = download_name
    try:
        etag_value = _etag(etag)
        modified = _modified_time(last_modified)
        if root is not None and not isinstance(source, (str, os.PathLike)):
            raise TypeError(
                "send_download(root=...) takes the path inside the root as a"
                f" string, not {type(source).__name__}."
            )
    except BaseException:
        # A bad argument: the file-like object handed over is closed all
        # the same, as it would have been with the response.
        _close_source(source)
        raise
    attrs: dict[str, t.Any] = {
        "attachment": attachment,
        "basename": basename,
        "mimetype": mimetype,
        "encoding": encoding,
        "charset": charset,
        "cache_control": cache_control,
        "cache_max_age": cache_max_age,
        "_conditional": conditional,
        "_etag": etag_value,
        "_modified_time": modified,
        "_max_age": max_age,
    }
    view: DownloadView
    if isinstance(source, (str, os.PathLike)):
        if root is None:
            # Trusted, as in send_file: a relative path is joined to
            # app.root_path by get_path.
            view = _SendPath(path=source, **attrs)
        else:
            # Untrusted, as in send_from_directory: confined to root by the
            # same code as PathDownloadView's URL paths.
            view = _SendPath(root=root, kwargs={"path": os.fspath(source)}, **attrs)
    else:
        view = _SendContent(_content=source, **attrs)
    return as_app_response(view.render_to_response())


class _Send(DownloadView):
    """What send_download changes in a view: send_file's keywords."""

    _conditional: bool = True
    _etag: str | None | t.Literal[True] = True
    _modified_time: datetime.datetime | None = None
    _max_age: int | cabc.Callable[[str | None], int | None] | None = None
    # Cache-Control and Expires of this response, decided once (the max_age
    # callable is called once even when a 304 and its headers need them).
    _cache: tuple[str, str | None] | None = None

    def _adjust(self, file: DownloadFile, *, owned: bool) -> DownloadFile:
        """``file`` with the call's ``etag`` and ``last_modified``.

        A wrapper made for this call (``owned``) is changed in place; the
        caller's own gets its validators through a :class:`_Revalidated`
        view for this response only (it may be shared by other requests, or
        its attributes read-only properties). Only the charset of text it
        streams, when it has none, is set on it, as for any response.
        """
        if self._etag is True and self._modified_time is None:
            return file
        if not owned:
            return _Revalidated(file, self._etag, self._modified_time)
        if self._etag is not True:
            file.etag = self._etag
        if self._modified_time is not None:
            file.modified_time = self._modified_time
        return file

    def _source_path(self) -> str | None:
        """What a ``max_age`` callable gets: the local path sent, or ``None``."""
        return self.file.path

    def get_cache_control(self) -> str:
        return self._cache_headers()[0]

    def _cache_headers(self) -> tuple[str, str | None]:
        cache = self._cache
        if cache is None:
            cache = self._cache = self._decide_cache()
        return cache

    def _decide_cache(self) -> tuple[str, str | None]:
        # Precedence: cache_control, cache_max_age, max_age, then
        # DOWNLOAD_CACHE_MAX_AGE, then Flask's SEND_FILE_MAX_AGE_DEFAULT.
        if self.cache_control is not None or self.cache_max_age is not None:
            return super().get_cache_control(), None
        max_age = self._max_age
        shared = True
        if max_age is None:
            if self._settings().cache_max_age is not None:
                return super().get_cache_control(), None
            # Nothing said here or in DOWNLOAD_CACHE_MAX_AGE: Flask's
            # default, as send_file would (SEND_FILE_MAX_AGE_DEFAULT). But
            # not "public", as send_file makes it: that setting is usually
            # meant for static files, and a view's download may be one
            # user's (checked by the view): no shared cache may keep it.
            max_age = current_app.get_send_file_max_age
            shared = False
        if callable(max_age):
            # send_file passes the path (None for a file-like object).
            max_age = max_age(self._source_path())
        if max_age is None:
            return super().get_cache_control(), None
        # Werkzeug's send_file: a lifetime makes the file public; 0 means
        # "revalidate every time". Both come with Expires, for HTTP/1.0
        # caches. A negative lifetime (not a valid delta-seconds, RFC 9111
        # §1.2.2) counts as 0.
        seconds = max(int(max_age), 0)
        expires = http_date(min(int(time.time()) + seconds, _LAST_HTTP_DATE))
        if seconds:
            scope = "public" if shared else "private"
            return f"{scope}, max-age={seconds}", expires
        return "no-cache, max-age=0", expires

    def _add_expires(self, response: Response) -> Response:
        expires = self._cache_headers()[1]
        if expires is not None:
            response.headers["Expires"] = expires
        return response

    def evaluate_preconditions(self, file: DownloadFile) -> int | None:
        if not self._conditional:
            return None
        return super().evaluate_preconditions(file)

    def not_modified_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        # RFC 9110 §15.4.5: a 304 carries the Expires the 200 would have.
        return self._add_expires(super().not_modified_response(*args, **kwargs))

    def download_response(self, *args: t.Any, **kwargs: t.Any) -> DownloadResponse:
        if not self._conditional:
            kwargs["ranges"] = None
        response = super().download_response(*args, **kwargs)
        if not self._conditional and response.status_code == 200:
            # No range request will be answered: do not advertise them.
            del response.headers["Accept-Ranges"]
        self._add_expires(response)
        return response


#: The last time an HTTP-date can tell (9999-12-31 23:59:59 UTC): a longer
#: ``max_age`` gives this ``Expires`` rather than an error.
_LAST_HTTP_DATE = 253402300799


class _SendPath(_Send, PathDownloadView):
    _path: str | None = None

    def get_root(self) -> str | None:
        """``root`` relative to ``app.root_path``, or ``None`` for a trusted path.

        send_from_directory's meaning, not PathDownloadView's: a root that
        does not exist (yet: a user's upload folder before the first upload),
        or is not a directory, holds no file, and the confined opener answers
        404 instead of a configuration error. Nothing is checked once and
        remembered per root (per-user roots have no end); the confined
        opener's cache of real root paths is bounded.

        :raises ConfigurationError: ``root`` is empty.
        """
        if self.root is None:
            return None  # a trusted path: get_path joins it to app.root_path
        root = os.fspath(self.root)
        if not root:
            raise ConfigurationError(
                "send_download(root='') would serve the application's own"
                " directory (app.root_path), its source code included. Pass the"
                " directory that holds the files to serve (root='.' if that is"
                " really the application's directory)."
            )
        return os.path.join(current_app.root_path, root)

    def get_path(self) -> str:
        path = self._path = super().get_path()
        return path

    def _source_path(self) -> str | None:
        # As send_file and send_from_directory: the path joined to the root
        # (or app.root_path), before symbolic links are resolved.
        return None if self._path is None else str(self._path)

    def get_file(self) -> DownloadFile:
        return self._adjust(super().get_file(), owned=True)


class _SendContent(_Send):
    _content: t.Any = None

    def get_file(self) -> DownloadFile:
        content = self._content
        if isinstance(content, DownloadFile):
            return self._adjust(content, owned=False)
        if isinstance(content, (bytes, bytearray, memoryview)) or hasattr(
            content, "read"
        ):
            try:
                file: DownloadFile | None = _local_file(content)
                if file is not None:
                    charset = self._text_charset()
                    if charset is not None:
                        # Refused as VirtualFile refuses it: a charset that
                        # is no text encoding.
                        _text_encoding(charset)
                        file.charset = charset
                else:
                    file = VirtualFile(content, charset=self._text_charset())
            except BaseException:
                # The file-like object handed over is closed with the
                # response; with no response (a stream that says it can
                # seek and cannot, a read that fails), it is closed here.
                _close_source(content)
                raise
            return self._adjust(file, owned=True)
        raise TypeError(
            "send_download takes a path, bytes, a file-like object or a"
            f" DownloadFile, not {type(content).__name__}."
        )


class _Revalidated(_ForwardingFile):
    """A caller's wrapper with the validators of one ``send_download`` call.

    ``etag`` and ``modified_time`` are this response's when the call gives
    them; everything else is the wrapped file's (attributes, ``open``,
    ``chunks``, ``close``), so local fast paths (``sendfile``, offload by
    ``path``) work as with the file itself.
    """

    # A response announcing the charset of streamed text sets ``charset``,
    # which the wrapped file's ``chunks`` then encodes with.
    _writes_through = True

    def __init__(
        self,
        file: DownloadFile,
        etag: str | None | t.Literal[True],
        modified_time: datetime.datetime | None,
    ) -> None:
        self._file = file
        self._overrides: dict[str, t.Any] = {}
        if etag is not True:
            self._overrides["etag"] = etag
        if modified_time is not None:
            self._overrides["modified_time"] = modified_time

    def _target(self) -> DownloadFile:
        return self._file

    def close(self) -> None:
        self._file.close()

    def __getattr__(self, name: str) -> t.Any:
        # What the wrapped class adds to DownloadFile's attributes.
        file = self.__dict__.get("_file")
        if file is None or name.startswith("__"):
            raise AttributeError(name)
        if name == "was_modified_since" and "modified_time" in self._overrides:
            # The wrapper's own answer is about its time, not last_modified:
            # the view compares modified_time instead.
            raise AttributeError(name)
        return getattr(file, name)

    def __repr__(self) -> str:
        return repr(self._file)


def _close_source(source: object) -> None:
    """Close a file-like ``source`` send_download was handed (paths and
    content have nothing to close)."""
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        return
    close = getattr(source, "close", None)
    if close is not None:
        close()


def _etag(value: bool | str) -> str | None | t.Literal[True]:
    if value is True:
        return True
    if value is False:
        return None
    if not isinstance(value, str):
        raise TypeError(f"etag must be True, False or a string, not {value!r}.")
    bare = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if not valid_opaque_tag(bare):
        raise ValueError(
            f"etag {value!r} cannot go into a header: use visible ASCII"
            " characters other than '\"'."
        )
    return bare


def _modified_time(
    value: datetime.datetime | datetime.date | int | float | None,
) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return as_utc(value)
    if isinstance(value, datetime.date):
        # As send_file (Werkzeug's http_date): a day is its midnight, UTC.
        return datetime.datetime.combine(value, datetime.time(), datetime.timezone.utc)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            "last_modified must be a datetime, a date or a POSIX timestamp,"
            f" not {value!r}."
        )
    try:
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(
            f"last_modified {value!r} is not a POSIX timestamp in datetime's range."
        ) from None
