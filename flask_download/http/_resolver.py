"""Host name lookups with a timeout, a bounded number at once."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
import typing as t

from ..exceptions import UpstreamTimeout
from ._base import _fail
from ._base import _log

#: Most host name lookups under way at once (each in its own thread).
MAX_LOOKUPS = 8
_lookups = threading.BoundedSemaphore(MAX_LOOKUPS)


def _reset_lookups() -> None:
    # A forked worker (gunicorn --preload) has none of its parent's lookup
    # threads: the slots they held would never come back.
    global _lookups
    _lookups = threading.BoundedSemaphore(MAX_LOOKUPS)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lookups)


def _resolve(host: str, port: int, timeout: float | None) -> list[t.Any]:
    """``getaddrinfo`` for ``host``, given up after ``timeout`` seconds.

    ``getaddrinfo`` has no timeout of its own, and a name whose DNS server
    never answers (one a client may choose) would hold the worker for as
    long as the system resolver insists. The lookup runs in a thread of its
    own, at most :data:`MAX_LOOKUPS` at once, so the stuck ones cannot pile
    up either; an address literal needs no lookup.

    :raises UpstreamTimeout: no answer within ``timeout``.
    :raises UpstreamError: no thread could be started for the lookup.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        timeout = None  # nothing to look up: answered at once
    if timeout is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    slots = _lookups  # the one released is the one acquired
    found: list[t.Any] = []
    done = threading.Event()
    once = threading.Lock()

    def give_back() -> None:
        # Once, by the thread or by a start that failed (or was interrupted
        # after the thread ran): a lost slot would never come back.
        if once.acquire(blocking=False):
            slots.release()

    def look_up() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as e:  # handed to the waiting request
            found.append(e)
        finally:
            give_back()
            done.set()

    thread = threading.Thread(target=look_up, name="flask-download-dns", daemon=True)
    if not slots.acquire(timeout=timeout):
        raise _lookup_timeout(host, "too many lookups under way")
    try:
        thread.start()
    except RuntimeError as e:  # "can't start new thread": a thread limit
        give_back()
        raise _fail(
            f"cannot resolve {host!r}: no thread for the lookup: {e}."
        ) from None
    except BaseException:
        give_back()
        raise
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise _lookup_timeout(host, f"no answer within {timeout} s")
    result = found[0]
    if isinstance(result, BaseException):
        raise result
    return t.cast("list[t.Any]", result)


def _lookup_timeout(host: str, why: str) -> UpstreamTimeout:
    _log(logging.ERROR, f"Upstream timeout: cannot resolve {host!r}: {why}.")
    return UpstreamTimeout(f"cannot resolve {host!r}: {why}.")
