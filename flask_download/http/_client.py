"""The pooled urllib3 client: one request sent, redirects followed."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import logging
import socket
import threading
import traceback
import typing as t
from urllib.parse import urljoin

from .._compat import require
from ..exceptions import UpstreamTimeout
from ._addresses import _Target
from ._addresses import _vet
from ._base import _CREDENTIALS
from ._base import _fail
from ._base import _log
from ._base import _REDIRECTS

if t.TYPE_CHECKING:
    import urllib3
    from urllib3.response import BaseHTTPResponse

# -- the pooled client ----------------------------------------------------------

_pool_lock = threading.Lock()
_pool_manager: urllib3.PoolManager | None = None


def _import_urllib3() -> t.Any:
    return require("urllib3", "http", "Remote files")


#: How many times the timeout an upstream has to send its whole response
#: head (status line, headers, 1xx answers), its TLS handshake included:
#: each read within the timeout is not enough, or a trickle of header bytes
#: would hold a worker for ever.
HEAD_DEADLINE_FACTOR = 3


def _pool() -> urllib3.PoolManager:
    global _pool_manager
    if _pool_manager is None:
        urllib3 = _import_urllib3()
        with _pool_lock:
            if _pool_manager is None:
                manager = urllib3.PoolManager(num_pools=32, maxsize=8)
                manager.pool_classes_by_scheme = _deadline_pools(urllib3)
                _pool_manager = manager
    return _pool_manager


def _deadline_pools(urllib3: t.Any) -> dict[str, type[t.Any]]:
    """urllib3's connection pools, whose connections must have the response
    head within :data:`HEAD_DEADLINE_FACTOR` times their timeout: past it,
    the socket is shut down and the request fails (a 502)."""
    from urllib3.connection import HTTPConnection
    from urllib3.connection import HTTPSConnection

    class _Deadline:
        _timer: threading.Timer | None = None
        _expired = False
        sock: socket.socket | None
        timeout: t.Any

        def _arm(self) -> None:
            if self._timer is None and isinstance(self.timeout, (int, float)):
                timer = threading.Timer(
                    HEAD_DEADLINE_FACTOR * self.timeout, self._expire
                )
                timer.daemon = True
                timer.start()
                self._timer = timer

        def _expire(self) -> None:
            self._expired = True
            _log(
                logging.ERROR,
                "Upstream sent no whole response head within"
                f" {HEAD_DEADLINE_FACTOR} x {self.timeout} s: cut off.",
            )
            sock = self.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)

        def _disarm(self) -> None:
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()

        def connect(self) -> None:
            self._arm()
            super().connect()  # type: ignore[misc]

        def request(self, *args: t.Any, **kwargs: t.Any) -> None:
            self._arm()
            super().request(*args, **kwargs)  # type: ignore[misc]

        def getresponse(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            try:
                response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
            except BaseException:
                self._disarm()
                self._timed_out()
                raise
            self._disarm()
            try:
                self._timed_out()
            except BaseException:
                response.close()  # what came before the cut is no answer
                raise
            return response

        def _timed_out(self) -> None:
            if self._expired:
                self._expired = False
                raise urllib3.exceptions.ReadTimeoutError(
                    None,
                    "",
                    f"no whole response head within {HEAD_DEADLINE_FACTOR} x"
                    f" {self.timeout} s",
                ) from None

        def close(self) -> None:
            self._disarm()
            super().close()  # type: ignore[misc]

    class _HTTP(_Deadline, HTTPConnection):
        pass

    class _HTTPS(_Deadline, HTTPSConnection):
        pass

    class _HTTPPool(urllib3.HTTPConnectionPool):  # type: ignore[misc]
        ConnectionCls = _HTTP

    class _HTTPSPool(urllib3.HTTPSConnectionPool):  # type: ignore[misc]
        ConnectionCls = _HTTPS

    return {"http": _HTTPPool, "https": _HTTPSPool}


def _open(
    target: _Target, method: str, headers: cabc.Mapping[str, str], timeout: float
) -> BaseHTTPResponse:
    u3 = _import_urllib3()
    exc = u3.exceptions
    pool_kwargs: dict[str, t.Any] = {}
    if target.scheme == "https":
        # Connect to the vetted address, but send SNI and check the
        # certificate for the name.
        pool_kwargs["server_hostname"] = target.host
    pool = _pool().connection_from_host(
        target.address, target.port, target.scheme, pool_kwargs=pool_kwargs
    )
    request_headers = {**headers, "Host": target.host_header}
    try:
        return pool.urlopen(
            method,
            target.target,
            headers=request_headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
            timeout=u3.Timeout(connect=timeout, read=timeout),
        )
    except exc.NewConnectionError as e:
        # Before TimeoutError: urllib3 makes it a ConnectTimeoutError subclass.
        raise _fail(f"cannot connect to {target.url!r}: {e}") from None
    except exc.TimeoutError as e:
        _log(logging.ERROR, f"Upstream timeout: {target.url!r}: {e}")
        raise UpstreamTimeout(f"{target.url!r}: {e}") from None
    except (exc.HTTPError, OSError) as e:
        # urllib3 may raise after http.client read the head (two different
        # Content-Length values): that response, and its socket, live on in
        # the traceback's frames. Clear them so the socket closes now, not
        # when the garbage collector finds the cycle.
        traceback.clear_frames(e.__traceback__)
        raise _fail(f"{target.url!r}: {type(e).__name__}: {e}") from None


def _follow(
    method: str,
    url: str,
    request_headers: dict[str, str],
    allowed_hosts: cabc.Collection[str] | None,
    timeout: float,
    max_redirects: int,
    allowed_ports: cabc.Collection[int] | None,
) -> tuple[BaseHTTPResponse, str]:
    """Send the request, following redirects (each hop vetted); the final
    answer, its body unread, and its URL. Credentials in ``request_headers``
    go to the first origin only."""
    request_headers = dict(request_headers)
    current = url
    origin = None
    for _ in range(max_redirects + 1):
        target = _vet(current, allowed_hosts, allowed_ports, timeout)
        hop_origin = (target.scheme, target.host, target.port)
        if origin is not None and hop_origin != origin:
            # Credentials the app set are for the first origin only (as
            # browsers and requests do): never hand them to another.
            for key in [k for k in request_headers if k.lower() in _CREDENTIALS]:
                del request_headers[key]
        origin = hop_origin
        response = _open(target, method, request_headers, timeout)
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or not location:
            return response, current
        _close(response, reuse=False)
        current = urljoin(current, location)
    raise _fail(f"{url!r}: more than {max_redirects} redirects.")


def _close(response: BaseHTTPResponse, *, reuse: bool) -> None:
    if not reuse:
        # Unread bytes would poison a reused connection: drop it.
        response.close()
    else:
        # Nothing is left to read (a HEAD, a body read to its end); reading
        # that nothing lets http.client close a connection the server closed
        # (a HEAD answered 404 and "Connection: close"), rather than the
        # socket waiting in the pool for the garbage collector.
        response.drain_conn()
    response.release_conn()
