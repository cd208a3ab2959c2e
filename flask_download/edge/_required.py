"""check_nginx_secure_link and nginx_secure_link_required: nginx's check in the app."""

from __future__ import annotations

import collections.abc as cabc
import functools
import typing as t

from flask import after_this_request
from flask import current_app
from flask import request
from flask.views import View

from .._context import app_object
from ..exceptions import InvalidSignature
from ._nginx import _app_secret
from ._nginx import _check_path_only
from ._nginx import _client_address
from ._nginx import verify_nginx_secure_link

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])


def check_nginx_secure_link(*, remote_addr: bool = False) -> None:
    """Check the current request's ``md5`` and ``expires`` as nginx would.

    :param remote_addr: the link is bound to the client's address.
    :raises InvalidSignature: missing or wrong hash (403).
    :raises SignatureExpired: the link expired (410).
    :raises ConfigurationError: no (or a weak) secret in the config, or the
        route takes URL variables from the host (see
        :func:`nginx_secure_url_for`).
    """
    secret = _app_secret(app_object())
    if request.url_rule is not None:
        _check_path_only(request.url_rule)
    # nginx reads $arg_md5 and $arg_expires from the raw query string: the
    # first "name=" (any case) at the start or after "&", not percent-decoded.
    query = request.query_string
    md5 = _nginx_arg(query, b"md5")
    expires = _nginx_arg(query, b"expires")
    if md5 is None and expires is None:
        raise InvalidSignature("This link needs a signature: ask for a new link.")
    # nginx hashes $uri: the decoded path, script root included (the app may
    # be mounted below the server's root), as raw bytes (WSGI gives them as
    # latin-1 text), so names that are not UTF-8 match too.
    environ = request.environ
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    stamp = verify_nginx_secure_link(
        path.encode("latin-1", "replace"),
        (md5 or b"").decode("latin-1"),
        (expires or b"").decode("latin-1"),
        secret=secret,
        remote_addr=_client_address(remote_addr or None),
    )
    # As for signed_url_for links: a presigned storage redirect, and the
    # response's caching, end with the link.
    from ..signing import _LINK_EXPIRES
    from ..signing import _private_until

    environ[_LINK_EXPIRES] = min(environ.get(_LINK_EXPIRES, stamp), stamp)
    after_this_request(functools.partial(_private_until, stamp))


def _nginx_arg(query: bytes, name: bytes) -> bytes | None:
    """The value of ``$arg_<name>`` in nginx (``ngx_http_arg``)."""
    lowered = query.lower()
    needle = name.lower() + b"="
    start = lowered.find(needle)
    while start != -1:
        if start == 0 or query[start - 1 : start] == b"&":
            value = query[start + len(needle) :]
            return value.partition(b"&")[0]
        start = lowered.find(needle, start + 1)
    return None


@t.overload
def nginx_secure_link_required(view: F) -> F: ...
@t.overload
def nginx_secure_link_required(
    view: None = None, *, remote_addr: bool = False
) -> cabc.Callable[[F], F]: ...
def nginx_secure_link_required(
    view: F | None = None, *, remote_addr: bool = False
) -> F | cabc.Callable[[F], F]:
    """Check links made by :func:`nginx_secure_url_for` in the app itself.

    For the Flask view of a route that nginx serves with ``secure_link``:
    wherever nginx does not answer first (development server, tests, a
    deployment without that location), the view accepts the same links and
    refuses the rest, 403 for a missing or wrong hash and 410 for an
    expired link.

    Like :func:`~flask_download.signature_required`, it also decorates a
    class-based view (:class:`flask.views.View`), returning a subclass.

    :param remote_addr: links are bound to the client's address.
    """

    def decorator(view: F) -> F:
        if isinstance(view, type):
            if not issubclass(view, View):
                raise TypeError(
                    "nginx_secure_link_required decorates a view function or a"
                    f" flask.views.View subclass, not the class {view.__qualname__}."
                )
            check = nginx_secure_link_required(remote_addr=remote_addr)
            namespace = {
                "decorators": [*view.decorators, check],
                "__module__": view.__module__,
                "__qualname__": view.__qualname__,
                "__doc__": view.__doc__,
            }
            return t.cast(F, type(view.__name__, (view,), namespace))

        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            check_nginx_secure_link(remote_addr=remote_addr)
            return current_app.ensure_sync(view)(*args, **kwargs)

        return t.cast(F, wrapper)

    if view is None:
        return decorator
    return decorator(view)
