"""Reaching the WSGI server: the connection closed after a short body."""

from __future__ import annotations

import typing as t


def close_connection(start_response: t.Any) -> None:
    """Have the server close the connection once this response is sent.

    Called when a body ends before the bytes its ``Content-Length``
    announced (a file shrank, a stream or an upstream broke off): a server
    that kept the connection open would let the client read the next
    response on it as the rest of this body. gunicorn does not compare the
    body with ``Content-Length``, so it is told through its ``Response``
    (the object whose ``start_response`` the application got), before it
    decides on keep-alive. Werkzeug's development server answers
    ``Connection: close`` to every request; waitress closes by itself when
    a body is short. Behind middleware that wraps ``start_response``, the
    server cannot be reached and this does nothing.
    """
    force_close = getattr(gunicorn_response(start_response), "force_close", None)
    if force_close is not None:
        force_close()


def gunicorn_response(start_response: t.Any) -> t.Any:
    """gunicorn's ``Response`` if ``start_response`` is its own (no
    middleware in between), else ``None``."""
    server = getattr(start_response, "__self__", None)
    if type(server).__module__ == "gunicorn.http.wsgi":
        return server
    return None
