"""Errors raised before a download's first byte, answered as a view's error."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from flask import globals as _flask_globals
from flask import has_request_context
from flask import Response
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from .._context import app_object

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment


def answer_failure(
    sent: Headers,
    error: Exception,
    environ: WSGIEnvironment,
    start_response: StartResponse,
) -> cabc.Iterable[bytes]:
    """Answer ``error``, raised before the first byte of a download whose
    headers are ``sent`` (see ``DownloadResponse._failed``)."""
    if not has_request_context():
        # Plain WSGI use, outside a Flask request.
        if isinstance(error, HTTPException):
            return error(environ, start_response)
        raise error
    if environ.get(_ERROR_ANSWER):
        # This is an error handler's answer (a 404 page that sends a
        # placeholder image), failed itself: the handler failed, the
        # answer that called it makes the app's 500. Its handlers again
        # would fail again, without end.
        raise error
    environ[_ERROR_ANSWER] = True
    try:
        return _answer_in_request(sent, error, environ, start_response)
    finally:
        # Only while this answer is made: a middleware that calls the app
        # again with the environ (a retry, a forward with environ.copy())
        # makes a request of its own, whose errors get their handlers.
        environ.pop(_ERROR_ANSWER, None)


def _answer_in_request(
    sent: Headers,
    error: Exception,
    environ: WSGIEnvironment,
    start_response: StartResponse,
) -> cabc.Iterable[bytes]:
    """:func:`answer_failure`, in a request, for the first failure."""
    app = app_object()
    # The functions given to after_this_request ran for the download:
    # "after this request", once (a temporary file they remove is gone
    # the second time). The error handler may give new ones.
    _forget_after_this_request()
    response: Response
    if isinstance(error, HTTPException):
        # As Flask's full_dispatch_request answers a view's error: the
        # handler's answer goes through after_request too (the session's
        # cookie, the app's own headers), and a handler that fails is
        # the app's 500.
        try:
            response = app.finalize_request(app.handle_user_exception(error))
        except Exception as failure:
            response = app.handle_exception(failure)
    else:
        # Logged, the 500 handler, after_request (finalize_request);
        # re-raised when the app propagates exceptions (testing, debug).
        response = app.handle_exception(error)
    _carry_cookies(sent, response.headers)
    try:
        return response(environ, start_response)
    except Exception as failure:
        # The handler's answer failed before its first byte: the app's
        # 500, as for a handler that raises. If the 500 handler's own
        # answer fails too, the server's 500 page. The functions the
        # handler gave to after_this_request ran for its answer.
        _forget_after_this_request()
        response = app.handle_exception(failure)
        _carry_cookies(sent, response.headers)
        return response(environ, start_response)


def _after_this_request_functions() -> list[t.Any] | None:
    """The current request's ``after_this_request`` functions: on its
    context (Flask 3.0, 3.1), on the app context it is merged with (3.2)."""
    for name in ("app_ctx", "request_ctx"):
        ran = getattr(getattr(_flask_globals, name), "_after_request_functions", None)
        if isinstance(ran, list):
            return ran
    return None


def _forget_after_this_request() -> None:
    """Empty the current request's ``after_this_request`` functions (they ran
    for an answer that is not sent)."""
    ran = _after_this_request_functions()
    if ran is not None:
        ran.clear()


#: In the WSGI environ while an error raised before the first byte is answered.
_ERROR_ANSWER = "flask_download.error_answer"


def _carry_cookies(sent: Headers, answer: Headers) -> None:
    """The cookies set on the download (by the view, by ``after_request``)
    that the error answer does not set, added to it: an ``after_request``
    function that sets a cookie once (Flask-Login's remember cookie, which
    it pops from the session) did so on the download, which never goes
    out, and had nothing left to do for the error answer."""
    cookies = sent.getlist("Set-Cookie")
    if not cookies:
        return
    # A cookie is its name, domain and path to the browser: "a" for /x and
    # "a" for / are two, kept side by side.
    answered = {_cookie_key(value) for value in answer.getlist("Set-Cookie")}
    for value in cookies:
        if _cookie_key(value) not in answered:
            answer.add("Set-Cookie", value)


def _cookie_key(value: str) -> tuple[str, str, str]:
    """The name, domain and path a ``Set-Cookie`` value sets (RFC 6265
    §5.3: a later cookie with all three equal replaces the earlier one)."""
    first, *attributes = value.split(";")
    domain = path = ""
    for attribute in attributes:
        key, _, attribute_value = attribute.partition("=")
        key = key.strip().lower()
        if key == "domain":
            domain = attribute_value.strip().lstrip(".").lower()
        elif key == "path":
            path = attribute_value.strip()
    return first.partition("=")[0].strip(), domain, path
