"""Offload downloads to the web server: nginx ``X-Accel-Redirect``, Apache and
lighttpd ``X-Sendfile``.

The application decides who may download what; the web server moves the
bytes. A rule (:mod:`flask_download.accel_rules`) maps where a file lives
(a local directory, ``source_dir``, or a storage URL prefix, ``source_url``)
to where the web server finds it (an nginx ``internal`` location,
``destination_url``, or a directory, ``destination_dir``). A download whose
file matches a rule becomes an empty-bodied :class:`AccelResponse` carrying
the offload header plus the download's ``Content-Type``,
``Content-Disposition``, validators and ``Cache-Control``; the file itself is
never opened.

The destination is built only from the rule's destination and the file's
path relative to the rule's source, after confining it: nothing a client
sends (request headers included) takes part in the decision.
"""

from __future__ import annotations

import collections.abc as cabc
import contextvars
import functools
import typing as t

from flask import current_app
from flask import Response
from werkzeug.datastructures import Headers

from .accel_rules import _accel_key
from .accel_rules import ACCEL_BACKENDS as ACCEL_BACKENDS
from .accel_rules import AccelRule as AccelRule
from .accel_rules import cached_rules as cached_rules
from .accel_rules import check_offload as check_offload
from .accel_rules import find_offload as find_offload
from .accel_rules import Offload as Offload
from .accel_rules import parse_rules as parse_rules
from .accel_rules import validate_accel as validate_accel
from .files import DownloadFile
from .response import DownloadResponse
from .response import REMADE_OPTIONS
from .settings import get_settings
from .settings import Settings

# The choice of the offload(...) decorator wrapping the view that runs:
# (backend, rules, owner). Set only while that view runs.
_decorated: contextvars.ContextVar[tuple[t.Any, t.Any, str] | None] = (
    contextvars.ContextVar("flask_download.offload", default=None)
)
# Headers the web server computes itself for the file it sends.
_DROPPED_HEADERS = ("Content-Length", "Content-Range", "Accept-Ranges")


def resolve_offload(
    file: DownloadFile,
    accel: str | t.Literal[False] | None,
    rules: t.Any,
    settings: Settings,
    root_path: str | None = None,
    owner: str | type = "accel",
) -> Offload | None:
    """The offload of ``file``: ``accel`` and ``rules`` win over the config,
    and the :func:`offload` decorator around the running view wins over
    both.

    The one place views, :func:`offload`, ``send_download`` and the
    ``after_request`` hook decide. Returns ``None`` at once when no backend
    is chosen and no rule names its own. A backend named here (``accel``,
    or by the decorator) also replaces the own ``backend`` of the
    configuration's rules; rules passed in ``rules`` keep theirs.

    :param accel: a backend, ``None`` for ``DOWNLOAD_ACCEL``, ``False`` for
        no offload.
    :param rules: offload rules (see :func:`parse_rules`), ``None`` for
        ``DOWNLOAD_ACCEL_RULES``; parsed once (:func:`cached_rules`).
    :param settings: the application's settings.
    :param root_path: a relative ``source_dir`` in ``rules`` is taken
        relative to it; ``None``: the current application's ``root_path``.
    :param owner: the view class (or a name) for the error message.
    :raises ConfigurationError: an unknown backend or an invalid rule.
    """
    decorated = _decorated.get()
    if decorated is not None:
        accel, rules, owner = decorated
        root_path = None
    if accel is None:
        backend = settings.accel
    elif accel is False:
        return None
    elif accel in ACCEL_BACKENDS:
        backend = accel
    else:
        backend = validate_accel(_accel_key(owner), accel)
    if rules is None:
        if backend is None and not settings.accel_rules:
            return None  # the common case, decided without a loop
        # A backend the view names is the server in front of it: it wins
        # over the backends the configuration's rules name (view attribute >
        # app config), so such a view never sends a header its server
        # would pass on to the client.
        return find_offload(
            file, backend, settings.accel_rules, override=accel is not None
        )
    if root_path is None:
        root_path = current_app.root_path
    return find_offload(file, backend, cached_rules(rules, backend, root_path))


class AccelResponse(DownloadResponse):
    """An empty-bodied download response that the web server completes.

    Carries the offload header and the download's headers but
    ``Content-Length``, ``Content-Range`` and ``Accept-Ranges``: the web
    server sends the file, answers ``Range`` and computes those itself.
    The file is never opened; it is closed with the response.

    :param original: the download response to offload; this response takes
        over its file, headers and close callbacks (do not use it after).
    :param offload: the header to send, from :func:`~flask_download.accel.find_offload`.
    """

    _offload_decided = True

    def __init__(self, original: DownloadResponse, offload: Offload) -> None:
        # The original's headers were built from the file already: take them
        # over instead of building them again (DownloadResponse.__init__).
        headers = original.headers
        for name in _DROPPED_HEADERS:
            del headers[name]
        headers[offload.header] = offload.value
        for name, value in offload.options:
            headers[name] = value
        # The body is empty; the web server replaces it (and this length).
        headers["Content-Length"] = "0"
        super(DownloadResponse, self).__init__(
            status=200, headers=headers, direct_passthrough=True
        )
        self.file = original.file
        self.attachment = original.attachment
        self.basename = original.basename
        self.chunk_size = original.chunk_size
        self._segments = []  # no body: DownloadResponse closes the file unread
        self._handle = None
        self._delivery = None
        self._on_close.extend(original._on_close)
        #: What was sent to the web server.
        self.offload = offload

    def iter_encoded(self) -> cabc.Iterator[bytes]:
        return iter(())


def _offloadable(response: DownloadResponse) -> DownloadResponse | None:
    # 200, or a single range (206): the web server reads Range from the
    # original request and answers it from the file. Several ranges (whose
    # Content-Type is multipart/byteranges) or a 416, decided by code that
    # read the request's Range, are made again without ranges: the web
    # server answers that Range itself, so the client's header never decides
    # whether a file is offloaded. Anything else stays with the application.
    status = response.status_code
    if status == 200:
        return response
    if status == 206 and not response.headers.get("Content-Type", "").startswith(
        "multipart/"
    ):
        return response
    options = getattr(response, "_options", None)
    if status not in (206, 416) or options is None:
        return None
    options = dict(zip(REMADE_OPTIONS, options, strict=True))
    whole = DownloadResponse(response.file, **options)
    # The response the application made, header for header (Cache-Control
    # as it set it, every Set-Cookie...), but what only the ranged answer
    # had: its type (multipart), range and length; what the whole file's
    # answer has that a 416 lacked (Content-Disposition...) is added.
    kept = Headers(
        [(k, v) for k, v in response.headers.items() if k not in _RANGE_HEADERS]
    )
    if status == 206 or "Content-Type" not in response.headers:
        kept["Content-Type"] = whole.headers["Content-Type"]  # not multipart
    for name, value in whole.headers.items():
        if name not in kept:
            kept.add(name, value)
    whole.headers = kept
    whole._on_close.extend(response._on_close)
    return whole


# What only the ranged answer had (Content-Type: a 206's is multipart).
_RANGE_HEADERS = frozenset(("Content-Range", "Content-Length"))


def apply_offload(
    response: DownloadResponse, offload: Offload | None
) -> DownloadResponse:
    """Turn ``response`` into an :class:`AccelResponse` for ``offload``.

    Marks the response as decided, so :func:`offload_after_request` leaves
    it alone; without an offload, or for a status the web server should not
    answer, ``response`` is returned unchanged.
    """
    response._offload_decided = True
    if offload is None:
        return response
    offloadable = _offloadable(response)
    if offloadable is None:
        return response
    return AccelResponse(offloadable, offload)


def offload_after_request(response: Response, settings: Settings) -> Response:
    """Offload a download response that no view decided on (built by hand),
    by the configuration.

    Any other response, and a download response already decided by a view
    (offloaded or opted out), is returned untouched.
    """
    if not isinstance(response, DownloadResponse) or response._offload_decided:
        return response
    return apply_offload(response, resolve_offload(response.file, None, None, settings))


F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])

#: Attribute of a view function made by :func:`offload`: its
#: ``(backend, rules, owner)``.
OFFLOAD_CHOICE = "_flask_download_offload"


def offload(
    backend: str | t.Literal[False] | None = None,
    rules: cabc.Iterable[cabc.Mapping[str, t.Any] | AccelRule] | None = None,
) -> cabc.Callable[[F], F]:
    """Choose the offload of one view: a function view or an ``as_view()``
    result.

    The decorator decides for every download the wrapped view makes,
    whatever the view's ``accel`` and ``accel_rules`` attributes and the
    configuration say (like django-downloadview's decorators)::

        @app.route("/report/<int:id>")
        @offload("nginx", rules=[{"source_dir": "/srv/reports",
                                  "destination_url": "/internal-reports/"}])
        def report(id):
            return send_download(f"/srv/reports/{id}.pdf")

        app.add_url_rule("/media/<path:path>", view_func=offload("apache")(
            PathDownloadView.as_view("media", root="/srv/media")))

    :param backend: ``"nginx"``, ``"apache"``, ``"lighttpd"``; ``None`` uses
        ``DOWNLOAD_ACCEL``; ``False`` never offloads this view. A backend
        named here is the server in front of the view: it also replaces the
        ``backend`` of the configuration's rules (not of ``rules``).
    :param rules: offload rules; ``None`` uses ``DOWNLOAD_ACCEL_RULES``. A
        relative ``source_dir`` is relative to the application's
        ``root_path``.
    :raises ConfigurationError: an unknown backend or an invalid rule (when
        the decorator is made).
    :raises TypeError: the decorator is used without parentheses, or on
        something that is not a view function (a view class: decorate its
        ``as_view()`` result, or list the decorator in its ``decorators``).
    """
    if callable(backend) and not isinstance(backend, str):
        raise TypeError(
            "offload takes the backend, not the view: write '@offload()' or"
            " '@offload(\"nginx\", rules=[...])', with parentheses."
        )
    given: t.Any = rules
    if isinstance(rules, cabc.Iterable) and not isinstance(
        rules, (str, bytes, cabc.Mapping, AccelRule)
    ):
        # A copy: a list changed (or a generator used up) later does not matter.
        given = tuple(rules)
    check_offload("offload(backend)", backend, given)
    choice = (backend, given, "offload(backend)")

    def decorator(view: F) -> F:
        if isinstance(view, type) or not callable(view):
            raise TypeError(
                f"offload(...) decorates a view function, not {view!r}: decorate"
                " 'SomeView.as_view(name)', or set 'decorators = [offload(...)]'"
                " on the class."
            )

        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            token = _decorated.set(choice)
            try:
                rv = current_app.ensure_sync(view)(*args, **kwargs)
            finally:
                _decorated.reset(token)
            response = current_app.make_response(rv)
            if not isinstance(response, DownloadResponse) or response._offload_decided:
                return response
            # Built by hand, not by a view or send_download: decide here.
            found = resolve_offload(
                response.file, backend, given, get_settings(), owner="offload(backend)"
            )
            return apply_offload(response, found)

        # For assert_download_response, which maps offload headers back to
        # files through the rules the view was given.
        setattr(wrapper, OFFLOAD_CHOICE, choice)
        return t.cast(F, wrapper)

    return decorator
