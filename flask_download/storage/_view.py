"""StorageDownloadView: serve a key, or redirect to a presigned URL."""

from __future__ import annotations

import datetime
import typing as t

from flask import request
from flask import Response

from ..exceptions import ConfigurationError
from ..files import DownloadFile
from ..response import representation
from ..views import DownloadView
from ._errors import _translate
from ._file import StorageFile
from ._keys import _check_local_folder
from ._keys import _is_s3
from ._keys import check_storage_folder
from ._keys import storage_key
from ._resolve import _check_storage_url
from ._resolve import resolve_storage

if t.TYPE_CHECKING:
    from flask.typing import RouteCallable
    from fsspec import AbstractFileSystem


class StorageDownloadView(DownloadView):
    """Serve a file of an fsspec filesystem (S3, memory, local disk...).

    The file is :attr:`path` (a trusted key relative to the storage prefix,
    or absolute), or the URL variable named by :attr:`path_url_kwarg`
    (``<path:path>``) confined to the prefix: ``..`` (also once decoded
    again, for stores that decode keys), absolute paths, backslashes and
    control characters give 404, and so does a key the store would read
    as another object (``?versionId=`` on S3; see :func:`storage_key`), and
    on the local disk symbolic links leading out of the prefix. A missing
    key (or one S3 refuses as a name, such as an invalid bucket) gives 404;
    a store that cannot be reached gives 503 (see
    :class:`StorageUnavailable`) with a log line.

    With :attr:`redirect`, stores whose filesystem implements ``sign()``
    answer with a 302 to a URL valid :attr:`redirect_expires` seconds, so
    the bytes never go through the application; other stores stream as
    usual. On S3 the URL also carries the view's ``Content-Disposition``
    and ``Content-Type`` (``response-content-disposition`` and
    ``response-content-type``), so the browser saves the file under the
    name the view gives, non-ASCII names included.

    A presigned URL is only valid for the method it was signed for (S3,
    GCS and every S3-compatible store sign the method), so ``HEAD`` never
    gets the ``GET`` URL: on S3 it is redirected to a URL presigned for
    ``HEAD`` (:attr:`redirect_head`), elsewhere the application answers it
    from the store's metadata (size, ETag, modification time), as it
    would when streaming.
    """

    #: An fsspec filesystem, or a URL such as ``"s3://bucket/prefix"`` or
    #: ``"memory://"`` (see :func:`~flask_download.resolve_storage`). For
    #: URL paths on the local disk, one with an absolute folder:
    #: ``"file:///srv/files"`` or a ``DirFileSystem`` (see :meth:`get_path`).
    storage: t.Any = None
    #: A trusted key, relative to the storage prefix, or absolute (the
    #: store's whole key, such as ``"/srv/reports/a.txt"`` on the local
    #: disk). Never set it from client input: use the URL variable for that.
    path: str | None = None
    #: Name of the URL variable holding a client-supplied key.
    path_url_kwarg: str = "path"
    #: Answer with a 302 to a presigned URL when the store can make one.
    redirect: bool = False
    #: Lifetime of presigned URLs: seconds, or a :class:`~datetime.timedelta`.
    #: SigV4 (S3) allows at most 7 days. On a signed link
    #: (:attr:`~flask_download.DownloadMixin.signed`, ``signature_required``)
    #: it is cut to the time the link has left.
    redirect_expires: int | datetime.timedelta = 300
    #: With :attr:`redirect`, answer ``HEAD`` with a 302 to a URL presigned
    #: for ``HEAD`` when the store can make one (S3). ``False``: the
    #: application answers every ``HEAD`` from the store's metadata.
    redirect_head: bool = True

    @classmethod
    def as_view(
        cls, name: str, *class_args: t.Any, **class_kwargs: t.Any
    ) -> RouteCallable:
        """Make a view function (see :meth:`DownloadView.as_view`).

        :raises ConfigurationError: :attr:`redirect_expires` is not a
            positive number of seconds, :attr:`storage` is an empty URL, or
            URL paths would be served from
            the local disk without an absolute folder (``LocalFileSystem()``,
            ``"file://"``, ``"file://."``, ``"file:///"``: see
            :meth:`get_path`).
        :raises ImportError: :attr:`storage` is a URL whose packages are not
            installed; the message names the extra (``s3://``: ``[s3]``).
        """
        expires = class_kwargs.get("redirect_expires", cls.redirect_expires)
        _expiry_seconds(expires, cls.__name__)  # fail now, not per request
        view = super().as_view(name, *class_args, **class_kwargs)
        # A storage URL whose packages are missing: say which extra now, not
        # with a 500 on the first request.
        storage = class_kwargs.get("storage", cls.storage)
        if isinstance(storage, str) and not storage:
            check_storage_folder(storage, cls.__name__)  # says it is empty
        _check_storage_url(storage)
        if (
            class_kwargs.get("path", cls.path) is None
            and cls.get_path is StorageDownloadView.get_path
        ):
            # URL paths: never confined to the working directory (nor to
            # "/"); a local folder is checked now, a remote URL at first use.
            check_storage_folder(storage, cls.__name__)
        return view

    def get_storage(self) -> tuple[AbstractFileSystem, str]:
        """The filesystem and prefix, from :attr:`storage` (resolved once per
        view instance).

        :raises ConfigurationError: :attr:`storage` is not set or invalid.
        """
        resolved: tuple[AbstractFileSystem, str] | None = getattr(
            self, "_resolved_storage", None
        )
        if resolved is None:
            if self.storage is None:
                raise ConfigurationError(
                    f"{type(self).__name__} needs a 'storage': an fsspec filesystem"
                    " or a URL such as 's3://bucket/prefix', set as an attribute or"
                    " passed to as_view()."
                )
            resolved = self._resolved_storage = resolve_storage(self.storage)
        return resolved

    def get_path(self) -> str:
        """The key of the file to send, confined to the storage prefix.

        A URL path is only served from the local disk below an absolute
        folder other than ``/``: a ``LocalFileSystem`` instance and the URLs
        ``"file://"``, ``"local://"``, ``"file://."``, ``"file://files"``
        and ``"file:///"`` would read it relative to the process's working
        directory (the project: its instance config, its database), or from
        anywhere on the machine. The trusted :attr:`path` may be absolute
        on any storage.

        :raises FileNotFound: a URL path that leaves the prefix.
        :raises ConfigurationError: neither :attr:`path` nor the URL variable,
            or a URL path on the local disk without such a folder.
        """
        fs, prefix = self.get_storage()
        if self.path is not None:
            # Trusted: an absolute path is the store's own key (on the local
            # disk, a path from "/"); a relative one is below the prefix.
            key = str(self.path)
            if key.startswith("/") or not prefix:
                return key
            return f"{prefix}/{key}"
        untrusted = self.kwargs.get(self.path_url_kwarg)
        if untrusted is None:
            raise ConfigurationError(
                f"{type(self).__name__} needs a 'path' attribute or a"
                f" '<path:{self.path_url_kwarg}>' URL variable."
            )
        _check_local_folder(fs, prefix, self.storage, type(self).__name__)
        return storage_key(fs, prefix, str(untrusted))

    def get_file(self) -> DownloadFile:
        key = self.get_path()
        fs, _ = self.get_storage()
        return StorageFile(fs, key)

    def get_redirect_expires(self) -> int:
        """Lifetime of presigned URLs in seconds, from :attr:`redirect_expires`.

        :raises ConfigurationError: not a positive number of seconds, or
            more than 7 days (SigV4's limit) on S3.
        """
        return _expiry_seconds(self.redirect_expires, type(self).__name__)

    def get_redirect_url(self, file: DownloadFile, method: str = "GET") -> str | None:
        """A URL of ``file`` presigned for ``method``, or ``None``.

        ``None`` means the store cannot presign it (a filesystem without
        ``sign()``, or a ``HEAD`` on a store other than S3); the application
        then answers the request itself. For S3 the URL also makes the store
        answer with this view's ``Content-Disposition`` and ``Content-Type``.
        The URL is valid :meth:`get_redirect_expires` seconds, never past
        the expiry of the signed link the request came with. Override it to
        pass other options to another backend's ``sign()``.

        :param method: ``"GET"`` or ``"HEAD"``.
        :raises StorageUnavailable: signing failed (no credentials...).
        :raises ConfigurationError: :attr:`redirect_expires` is invalid.
        """
        if not isinstance(file, StorageFile):
            return None
        fs = file.fs
        expires = self.get_redirect_expires()
        link_left = _signed_link_left()
        if link_left is not None and link_left < expires:
            # A signed link grants access until its expiry: the URL it
            # redirects to must not grant more.
            expires = link_left
        params: dict[str, str] = {}
        if _is_s3(fs):
            if expires > _SIGV4_MAX_EXPIRES:
                raise ConfigurationError(
                    f"{type(self).__name__}.redirect_expires is {expires} seconds:"
                    " S3 presigned URLs (SigV4) are valid at most 7 days"
                    f" ({_SIGV4_MAX_EXPIRES} seconds)."
                )
            # Described as the streamed download would be.
            _, content_type, encoding, disposition = representation(
                file,
                self.get_basename(),
                self.get_mimetype(),
                self.get_encoding(),
                self.get_charset(),
                self.attachment,
            )
            params["ResponseContentDisposition"] = disposition
            params["ResponseContentType"] = content_type
            if encoding is not None:
                params["ResponseContentEncoding"] = encoding
            if method == "HEAD":
                # s3fs passes it to botocore's generate_presigned_url.
                params["client_method"] = "head_object"
        elif method != "GET":
            # fsspec's sign() has no method: its URLs are for GET only.
            return None
        try:
            return str(fs.sign(file.key, expiration=expires, **params))
        except NotImplementedError:
            return None
        except Exception as e:
            error = _translate(fs, file.key, e, "presigning")
            if error is None:
                raise
            raise error from e

    def file_response(self, file: DownloadFile) -> Response | None:
        """A 302 to a presigned URL (:attr:`redirect`), else ``None``: the
        file is streamed, or for ``HEAD`` described from its metadata."""
        if not self.redirect:
            return None
        method = request.method
        if method == "HEAD" and not self.redirect_head:
            return None
        if method not in ("GET", "HEAD"):
            return None
        url = self.get_redirect_url(file, method)
        if url is None:
            return None
        # The URL expires: no cache may keep the redirect.
        return Response(
            b"", status=302, headers={"Location": url, "Cache-Control": "no-store"}
        )


#: Longest lifetime of a SigV4 presigned URL: 7 days.
_SIGV4_MAX_EXPIRES = 7 * 24 * 3600


def _signed_link_left() -> int | None:
    """Whole seconds (at least 1) until the link of this request expires
    (:func:`~flask_download.signed_url_for`'s or
    :func:`~flask_download.nginx_secure_link`'s, checked by the app);
    ``None`` when no link was checked."""
    from ..signing import _LINK_EXPIRES
    from ..signing import _now

    expires = request.environ.get(_LINK_EXPIRES)
    if not isinstance(expires, int) or isinstance(expires, bool):
        return None
    return max(1, int(expires - _now()))


def _expiry_seconds(value: t.Any, owner: str) -> int:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
        if value == int(value):
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{owner}.redirect_expires must be a positive whole number of seconds"
            f" or a timedelta, not {value!r}."
        )
    return value
