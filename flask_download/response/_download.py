"""The DownloadResponse class: headers from a file wrapper, a streamed body."""

from __future__ import annotations

import codecs
import collections.abc as cabc
import itertools
import typing as t

from flask import has_request_context
from flask import Response
from werkzeug.datastructures import Headers
from werkzeug.exceptions import NotFound

from .. import ranges as _ranges
from .. import signals as _signals
from ..exceptions import FileNotFound
from ..files import _FromOffset
from ..files import _LocalFile
from ..files import checked_size
from ..files import DEFAULT_CHUNK_SIZE
from ..files import DownloadFile
from ..files import read_slice
from ._bodies import _BINARY_STREAMS
from ._bodies import _ClosingBody
from ._bodies import _EncodedText
from ._bodies import _FileSpan
from ._bodies import _is_text_stream
from ._bodies import _reads_its_file
from ._bodies import _SendfileSpan
from ._failed import answer_failure
from ._media import codec_charset
from ._media import DEFAULT_CONTENT_SECURITY_POLICY
from ._media import is_active_type
from ._media import media_type_charset
from ._representation import _checked_headers
from ._representation import representation
from ._representation import validator_headers
from ._server import close_connection

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment


#: The keywords of :class:`DownloadResponse` kept to make it again without
#: ranges (``DownloadResponse._options`` holds their values, in this order).
REMADE_OPTIONS = (
    "attachment",
    "basename",
    "mimetype",
    "encoding",
    "charset",
    "chunk_size",
    "cache_control",
    "headers",
    "content_security_policy",
)


class DownloadResponse(Response):
    """A response that sends a :class:`~flask_download.DownloadFile`.

    Headers are set when the response is made, from what the wrapper
    knows; the file is opened only when the server asks for the body (not
    for ``HEAD``). Local files go through the server's
    ``wsgi.file_wrapper`` (``sendfile``), whole or as a single range; other
    bodies are streamed in chunks. The file is closed when the response is
    closed, also when the client hangs up.

    :param file: the file to send.
    :param attachment: ``Content-Disposition: attachment`` (else ``inline``).
    :param basename: the client-side name; defaults to ``file.name``.
    :param mimetype: the media type; defaults to the wrapper's, else guessed.
    :param encoding: the ``Content-Encoding``; defaults to the wrapper's.
    :param charset: the charset of ``text/*`` types; defaults to the
        wrapper's, else UTF-8.
    :param ranges: the decision of :func:`flask_download.ranges.evaluate_range`:
        ``None`` (whole file), byte ranges (206), or ``UNSATISFIABLE`` (416).
    :param chunk_size: bytes per chunk when Python streams the body.
    :param cache_control: the ``Cache-Control`` value, if any.
    :param headers: extra headers.
    :param content_security_policy: sent as ``Content-Security-Policy`` with
        inline responses of active types (HTML, XHTML, SVG, XML), so that
        their scripts cannot run in the site's origin; ``None`` sends none.
    """

    default_mimetype = "application/octet-stream"
    # Content-Length is set from the file's size; Werkzeug must not compute
    # one by reading the body (that would use up an iterator).
    automatically_set_content_length = False
    _offload_decided: bool = False  # set by accel.apply_offload: decided once
    # The server's start_response, to close the connection after a short body.
    _start_response: t.Any = None
    # The view's charset (when it gives one) and the representation's media
    # type (when Content-Type is multipart/byteranges): the charset text that
    # a custom wrapper yields is encoded with is found from them.
    _charset: str | None = None
    _media_type: str | None = None
    # While _first_read reads ahead of the status line: nothing is sent, and
    # an error then gets an answer of its own (_failed), framed as it is.
    _reading_ahead = False

    def __init__(
        self,
        file: DownloadFile,
        *,
        attachment: bool = True,
        basename: str | None = None,
        mimetype: str | None = None,
        encoding: str | None = None,
        charset: str | None = None,
        ranges: _ranges.RangeDecision = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        cache_control: str | None = None,
        headers: Headers | cabc.Mapping[str, str] | None = None,
        status: int | None = None,
        content_security_policy: str | None = DEFAULT_CONTENT_SECURITY_POLICY,
    ) -> None:
        self.file = file
        self.attachment = attachment
        if charset is not None:
            self._charset = charset  # for text a custom wrapper yields
        name, content_type, content_encoding, disposition = representation(
            file, basename, mimetype, encoding, charset, attachment
        )
        self.basename = name
        self.chunk_size = chunk_size
        # How it was made, but for ranges and status (in the order of
        # REMADE_OPTIONS): an offload rule met after the fact
        # (accel.apply_offload) makes it again for the web server, which
        # answers the request's Range itself.
        self._options = (
            attachment,
            basename,
            mimetype,
            encoding,
            charset,
            chunk_size,
            cache_control,
            headers,
            content_security_policy,
        )
        #: Body parts: literal bytes, or ``(start, stop)`` spans of the file
        #: (``stop`` ``None``: to the end). Empty for bodiless responses.
        self._segments: list[bytes | tuple[int, int | None]] = []
        self._handle: t.IO[bytes] | None = None
        # Counts the body for ``download_finished`` (only with receivers).
        self._delivery: _signals._Delivery | None = None

        size = file.size
        if size is not None and (type(size) is not int or size < 0):
            size = checked_size(size, f"{type(file).__name__}.size")
        # Built as one list: a download's headers are all distinct, so the
        # per-header replace of ``Headers.__setitem__`` is not needed.
        items = [("X-Content-Type-Options", "nosniff")]
        unsatisfiable = ranges is _ranges.UNSATISFIABLE
        if content_encoding and not unsatisfiable:
            items.append(("Content-Encoding", content_encoding))
        items += validator_headers(file, cache_control)
        if file.seekable and size is not None:
            items.append(("Accept-Ranges", "bytes"))

        if ranges is _ranges.UNSATISFIABLE:
            # RFC 9110 §15.5.17: 416 carries the current length. It has no
            # content, so (like the 304 and the 412) no Content-Type and no
            # Content-Encoding, which describe content (RFC 9110 §8.3, §8.4):
            # the file's type on an empty 416 would claim a body it lacks.
            status = 416
            items.append(
                ("Content-Range", _ranges.unsatisfied_content_range(size or 0))
            )
            items.append(("Content-Length", "0"))
        else:
            items.append(("Content-Disposition", disposition))
            if (
                content_security_policy
                and not attachment
                and is_active_type(content_type)
            ):
                items.append(("Content-Security-Policy", content_security_policy))
            if not ranges:
                status = status or 200
                self._segments = [(0, size)]
                if size is not None:
                    items.append(("Content-Length", str(size)))
            elif len(ranges) == 1:
                assert size is not None
                status = 206
                start, stop = ranges[0]
                items.append(
                    ("Content-Range", _ranges.content_range(start, stop, size))
                )
                items.append(("Content-Length", str(stop - start)))
                self._segments = [(start, stop)]
            else:
                # RFC 9110 §14.6: several ranges go out as multipart/byteranges.
                assert size is not None
                status = 206
                boundary = _ranges.make_boundary()
                parts, closing, length = _ranges.multipart_layout(
                    ranges, size, content_type, boundary
                )
                self._media_type = content_type
                content_type = f"multipart/byteranges; boundary={boundary}"
                items.append(("Content-Length", str(length)))
                for header, start, stop in parts:
                    self._segments += [header, (start, stop)]
                self._segments.append(closing)
        # First: Werkzeug looks for it by name before anything else.
        items.insert(0, ("Content-Type", content_type))
        # As send_file calls it: the body first, positional (an app's
        # response class may require it, and mixes in: app_response_class).
        super().__init__(
            None,
            status=status,
            headers=_checked_headers(items),
            direct_passthrough=True,
        )
        if unsatisfiable:
            # Werkzeug adds a default type when there is none: the type goes
            # in first (above), then out.
            del self.headers["Content-Type"]
        if headers:
            self.headers.update(headers)

    # -- body ---------------------------------------------------------------

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        # Kept to reach the server if the body ends short (_cut_short).
        # Werkzeug's Response.__call__, inlined: no extra call per request.
        self._start_response = start_response
        try:
            app_iter, status, headers = self.get_wsgi_response(environ)
        except Exception as error:
            # Nothing is sent yet (the file is opened and its first chunk
            # read before the status line): answer as a view's error would.
            return self._failed(error, environ, start_response)
        start_response(status, headers)
        return app_iter

    def _failed(
        self, error: Exception, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        """Answer an error raised before the first byte (by ``open()`` or the
        first read: a store down since ``info()``, an upstream that broke off)
        with the application's error handlers, as if the view had raised it:
        404, 503, 502 or 504 for the library's errors, the app's 500 handler
        (and its log line) for a bug. The server would otherwise send its own
        500 page. ``after_request`` functions run for that answer too (they
        ran for the download already), as for an error a view raised; the
        ``after_this_request`` ones ran, and do not run again; the cookies
        set on the download go out with the answer. An error handler's answer
        that fails before its first byte too is the app's 500."""
        self.close()
        return answer_failure(self.headers, error, environ, start_response)

    def _cut_short(self) -> None:
        """The body ended before its ``Content-Length``: see that the
        connection closes after it (:func:`close_connection`)."""
        close_connection(self._start_response)

    def _wants_body(self, environ: WSGIEnvironment) -> bool:
        return bool(self._segments) and environ.get("REQUEST_METHOD") != "HEAD"

    def _single_span(self) -> tuple[int, int | None] | None:
        if len(self._segments) == 1 and isinstance(self._segments[0], tuple):
            return self._segments[0]
        return None

    def get_wsgi_response(
        self, environ: WSGIEnvironment
    ) -> tuple[cabc.Iterable[bytes], str, list[tuple[str, str]]]:
        # Werkzeug builds the headers before the body; open the file first so
        # that a file deleted since the view stat-ed it is still a clean 404.
        app_iter = self.get_app_iter(environ)
        if (
            _signals.download_started.receivers or _signals.download_finished.receivers
        ) and self._is_offloaded(environ):
            _signals._offloaded(self.file)
        headers = self.get_wsgi_headers(environ)
        return app_iter, self.status, headers.to_wsgi_list()

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        # Werkzeug's version copies the headers to fix Location and
        # Content-Location and the length of 1xx, 204 and 304 answers. A
        # download (200, 206, 404 or 416) has none of those unless an
        # application added them: then, and only then, the copy is made.
        if self.status_code in _PLAIN_STATUSES:
            for key, _ in self.headers:
                if key not in _OWN_HEADERS and key.lower() in _FIXED_HEADERS:
                    return super().get_wsgi_headers(environ)
            return self.headers
        return super().get_wsgi_headers(environ)

    def get_app_iter(self, environ: WSGIEnvironment) -> cabc.Iterable[bytes]:
        if not self._wants_body(environ):
            self.close()
            return ()
        file = self.file
        text = False
        try:
            if file.seekable:
                handle = self._handle = file.open()
                if type(handle) not in _BINARY_STREAMS and _is_text_stream(handle):
                    # A subclass's open() gave text: bytes in the response's
                    # charset are sent, never the str, never by file_wrapper.
                    self._handle = self._encoded_text(handle)
                    text = True
        except FileNotFound as error:
            return self._vanished(error)
        # Signals: nothing but two truthiness checks without receivers.
        delivery = None
        if _signals.download_started.receivers or _signals.download_finished.receivers:
            try:
                delivery = self._delivery = _signals._begin(file)
            except BaseException:
                self.close()  # a receiver failed: release the open file
                raise
        wrapper = environ.get("wsgi.file_wrapper")
        span = self._single_span()
        # A caller's open file (send_download(open(path, "rb"))) goes the
        # same way as a path, its offsets counted from where it was handed
        # over (``start``): the span's ends are in the file itself.
        base = file.start if type(file) is _LocalFile else None
        if (
            wrapper is not None
            and span is not None
            and not text
            # The bytes of a local file, as the descriptor has them: a
            # subclass's open() may give a stream that transforms them.
            and (
                base is not None
                or (file.path is not None and _reads_its_file(self._handle))
            )
        ):
            # Zero-copy: hand the server the open file positioned at the
            # range start; it sends exactly Content-Length bytes from there.
            # The server's own wrapper object is returned as is: gunicorn
            # uses sendfile only when it gets its FileWrapper back.
            assert self._handle is not None
            handle, self._handle = self._handle, None
            start, stop = span
            length = (file.size if stop is None else stop) or 0
            if base is not None:
                # The server counts in the file itself: gunicorn passes the
                # descriptor's offset (lseek on fileno()) to socket.sendfile,
                # which seek()s the span to it when os.sendfile fails. The
                # span's seek() and tell() count from 0 too, as fileno() does.
                handle = t.cast(
                    t.IO[bytes], _FromOffset(handle.fileno(), 0, base + start)
                )
            elif start:
                handle.seek(start)
            server = environ.get("SERVER_SOFTWARE", "")
            if server.startswith(_CLAMPING):
                # gunicorn: sendfile from the current position, but a body
                # of one chunk is cheaper read and written (its sendfile
                # path costs a poll selector, an fstat, two lseeks and the
                # kernel's page references: 10 to 60 us a 4 KiB response,
                # benchmarks/README.md); no fileno() makes it read().
                small = length - start <= min(self.chunk_size, SMALL_BODY)
                cls = _FileSpan if small else _SendfileSpan
            else:
                # Servers other than gunicorn may send a descriptor from
                # offset 0 for the file's size (uWSGI): only the file from
                # its first byte is "whole", never a caller's file handed
                # over past it.
                whole = start == 0 and length == file.size and not base
                cls = _SendfileSpan if whole else _FileSpan
            base = base or 0
            filelike: t.Any = cls(
                handle, base + start, base + length, self.close, self._cut_short
            )
            if delivery is not None:
                # Count what the server reads (this turns sendfile off).
                filelike = delivery.reader(filelike, length - start)
            return wrapper(filelike, self.chunk_size)  # type: ignore[no-any-return]
        body = self._iter_body()
        if delivery is not None:
            body = delivery.count(body, self.headers.get("Content-Length", type=int))
        return self._first_read(body)

    def _first_read(self, body: cabc.Iterator[bytes]) -> cabc.Iterable[bytes]:
        """The body, its first bytes read before the status line is sent.

        Werkzeug and gunicorn send the status with the first body bytes: an
        error raised then (a key deleted since ``info()``, a store down, an
        upstream that broke off before its first byte) could only become the
        server's 500 page. Read now, it is a 404, or the error's own status
        (see :meth:`_failed`).
        """
        # A multipart body starts with its first part's header, made here:
        # the file's first byte comes after it.
        lead = self._segments[0]
        wanted = len(lead) + 1 if isinstance(lead, bytes) else 1
        read: list[bytes] = []
        self._reading_ahead = True
        try:
            for chunk in body:
                if chunk:
                    read.append(chunk)
                    wanted -= len(chunk)
                    if wanted <= 0:
                        break
            else:
                if not read:
                    self.close()
                    return ()
        except FileNotFound as error:
            return self._vanished(error)
        except BaseException:
            self.close()
            raise
        finally:
            self._reading_ahead = False
        close = getattr(body, "close", None)
        callbacks = [self.close] if close is None else [close, self.close]
        return _ClosingBody(itertools.chain(read, body), callbacks)

    def _iter_body(self) -> cabc.Iterator[bytes]:
        # A body that ends before its Content-Length (the file shrank or
        # changed, a stream or upstream ended or failed early) must not
        # leave the connection open: see _cut_short.
        missing = 0
        try:
            handle = self._handle
            if handle is None:
                # A stream without open(): its own chunks, whole. A subclass
                # yielding str gets it encoded with the charset the response
                # announces: no str may reach the server.
                sent = 0
                expected = self.content_length
                encoder = None
                chunk: t.Any
                # _FLUSH ends the chunks: the encoder's last bytes, if any.
                for chunk in itertools.chain(self.file.chunks(self.chunk_size), _FLUSH):
                    if type(chunk) is not bytes:
                        if isinstance(chunk, str):
                            if encoder is None:
                                encoder = self._text_encoder()
                            chunk = encoder.encode(chunk)
                        elif chunk is _END:
                            if encoder is None:
                                break
                            chunk = encoder.encode("", final=True)
                        elif isinstance(chunk, (bytearray, memoryview)):
                            chunk = bytes(chunk)
                        else:
                            raise TypeError(
                                f"{type(self.file).__name__}.chunks() yielded"
                                f" {type(chunk).__name__!r}: chunks are bytes or str."
                            )
                        if not chunk:
                            continue
                    if expected is not None and sent + len(chunk) > expected:
                        # A source longer than the size it declared: never
                        # past Content-Length, or the extra bytes would be
                        # read as the next response on a kept-alive
                        # connection.
                        yield chunk[: expected - sent]
                        sent = expected
                        break
                    sent += len(chunk)
                    yield chunk
                if expected is not None:
                    missing = expected - sent
            else:
                unchanged = self.file.unchanged_check(handle)
                chunk_size = self.chunk_size
                for segment in self._segments:
                    if isinstance(segment, bytes):
                        yield segment
                    else:
                        start, stop = segment
                        missing = yield from read_slice(
                            handle, chunk_size, start, stop, unchanged
                        )
                        if missing:
                            break  # no more parts after a short one
        except BaseException:
            # Failed mid-body, or closed early (GeneratorExit: the client
            # hung up): whatever was sent is short. Not before the status
            # line: the connection may serve the next request after the
            # error's own answer.
            if not self._reading_ahead:
                self._cut_short()
            raise
        if missing > 0:
            self._cut_short()

    def iter_encoded(self) -> cabc.Iterator[bytes]:
        # For code that reads the response directly (``response.get_data()``
        # needs a sequence; ``b"".join(response.iter_encoded())`` works).
        if self._segments and self.file.seekable and self._handle is None:
            handle = self._handle = self.file.open()
            if _is_text_stream(handle):
                self._handle = self._encoded_text(handle)
        return self._iter_body()

    def _encoded_text(self, handle: t.IO[t.Any]) -> t.IO[bytes]:
        """The text stream ``open()`` gave, read as bytes in the response's
        charset; the headers made from the wrapper's ``size`` are corrected
        when the text encodes to another length."""
        stream = _EncodedText(t.cast(t.IO[str], handle), self._text_encoding())
        try:
            length = stream.length()
        except BaseException:
            self.close()  # a character the charset cannot encode, say
            raise
        if length is not None and length != self.file.size:
            # A size counted in characters, newlines translated, another
            # charset: Content-Length must count the bytes sent, and ranges
            # of a size that is wrong cannot be answered (RFC 9110 §14.2
            # lets a server ignore Range). Nothing is sent yet.
            headers = self.headers
            if self.status_code == 206:
                self.status_code = 200
                del headers["Content-Range"]
                if self._media_type is not None:
                    headers["Content-Type"] = self._media_type
            del headers["Accept-Ranges"]
            headers["Content-Length"] = str(length)
            self._segments = [(0, length)]
        return t.cast(t.IO[bytes], stream)

    def _text_encoding(self) -> str:
        """The charset text a wrapper gives is encoded with: the one the
        response announces, else the view's or the wrapper's, else UTF-8."""
        content_type = self._media_type or self.headers.get("Content-Type", "")
        charset = media_type_charset(content_type) or self._charset or self.file.charset
        return codec_charset(charset) or "utf-8"

    def _text_encoder(self) -> codecs.IncrementalEncoder:
        # One encoder for the whole body: a stateful encoding (a byte order
        # mark, ISO-2022 shifts) is written once, not once a chunk.
        return codecs.getincrementalencoder(self._text_encoding())()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.basename!r} [{self.status}]>"

    def _vanished(self, error: FileNotFound) -> cabc.Iterable[bytes]:
        """The file is gone since the view found it: in a request, the app's
        404 (its error handlers, see :meth:`_failed`), as a view's missing
        file is; else an empty 404."""
        if has_request_context():
            self.close()
            raise NotFound() from error
        self._become_not_found()
        return ()

    def _become_not_found(self) -> None:
        self.close()
        self.status_code = 404
        self._segments = []
        for name in (
            "Content-Disposition",
            "Content-Encoding",
            "Content-Range",
            "Accept-Ranges",
            "ETag",
            "Last-Modified",
        ):
            del self.headers[name]
        self.headers["Content-Type"] = "text/plain; charset=utf-8"
        self.headers["Content-Length"] = "0"

    def close(self) -> None:
        """Close the file and its open stream; safe to call more than once."""
        handle, self._handle = self._handle, None
        try:
            if handle is not None:
                handle.close()
        finally:
            self.file.close()
            super().close()
            delivery, self._delivery = self._delivery, None
            if delivery is not None:
                delivery.finish()

    def _is_offloaded(self, environ: WSGIEnvironment) -> bool:
        # An empty-bodied download the web server sends (accel.AccelResponse).
        return (
            environ.get("REQUEST_METHOD") != "HEAD"
            and self.status_code in (200, 206)
            and any(name in self.headers for name in _signals.OFFLOAD_HEADERS)
        )


# Statuses whose headers Werkzeug's get_wsgi_headers leaves as they are, and
# the headers it rewrites for any status.
_PLAIN_STATUSES = frozenset((200, 206, 404, 416))
_FIXED_HEADERS = frozenset(("location", "content-location"))
# Headers a download or a 304 is built with (skipped without a lower()).
_OWN_HEADERS = frozenset(
    (
        "X-Content-Type-Options",
        "Content-Encoding",
        "Last-Modified",
        "ETag",
        "Cache-Control",
        "Accept-Ranges",
        "Content-Range",
        "Content-Length",
        "Content-Disposition",
        "Content-Security-Policy",
        "Content-Type",
    )
)


# Ends the chunks of a stream (DownloadResponse._iter_body): text encoded so
# far may leave an incremental encoder with bytes to write.
_END = object()
_FLUSH = (_END,)


# Servers whose file_wrapper sends from the file's current position and never
# more than Content-Length (gunicorn: ``Response.sendfile`` and ``write``).
_CLAMPING = ("gunicorn/",)

#: Bodies of at most this many bytes (and one chunk) from a local file are
#: given to gunicorn's ``wsgi.file_wrapper`` without ``fileno()``: it reads
#: and writes them, cheaper than its ``sendfile`` up to about 64 KiB
#: (benchmarks/README.md, "Per-request cost on the wire").
SMALL_BODY = 64 * 1024
