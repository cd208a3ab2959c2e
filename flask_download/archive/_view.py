"""The view that serves many files as one ZIP archive."""

from __future__ import annotations

import collections.abc as cabc

# The Member alias is a string that names os.PathLike: typing.get_type_hints()
# reads it in the globals of this module's functions.
import os  # noqa: F401
import typing as t

from ..files import DownloadFile
from ..response import DownloadResponse
from ..views import DownloadView
from ._file import ArchiveFile
from ._file import Member
from ._response import ArchiveResponse


class ZipDownloadView(DownloadView):
    """Serve many files as one ZIP archive, streamed as it is made.

    Override :meth:`get_members` to return the files (any wrappers, or
    ``(name, wrapper)`` pairs)::

        class ReportsZip(ZipDownloadView):
            basename = "reports.zip"

            def get_members(self):
                folder = REPORTS / str(self.kwargs["year"])
                return (PathFile(path) for path in sorted(folder.iterdir()))

    Stored archives (the default) get ``Content-Length``, a strong ``ETag``,
    ``Last-Modified`` (the newest member), 304/412 and ``Range`` like any
    download; ``HEAD`` reads no member's data (a remote member's answer,
    asked for its size, is closed unread). :exc:`~flask_download.FileNotFound`
    from :meth:`get_members` answers 404; an empty list is an empty archive.
    Archives are never offloaded to the web server (it has no file to send).
    """

    #: The archive's client-side name.
    basename: str | None = "download.zip"
    #: Deflate the members: smaller, but no ``Content-Length`` and no ``Range``.
    compress: bool = False
    #: Send local members with ``sendfile`` where the server exposes its
    #: socket (see :class:`~flask_download.archive.ArchiveResponse`).
    sendfile: bool = True

    response_class: type[DownloadResponse] = ArchiveResponse

    def get_members(self) -> cabc.Iterable[Member]:
        """Return the files of the archive, made for this request.

        A generator is best: each member is looked at (size, times) as it
        comes, and a local file's descriptor or a remote file's connection
        is released at once, so that at most one is open whatever the
        number of files.

        :raises FileNotFound: answered with 404.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement 'get_members' and return"
            " DownloadFile wrappers or (name, wrapper) pairs."
        )

    def download_response(self, *args: t.Any, **kwargs: t.Any) -> DownloadResponse:
        """Build the archive's response as
        :meth:`DownloadMixin.download_response` does, and pass
        :attr:`sendfile` on to it.
        """
        response = super().download_response(*args, **kwargs)
        if isinstance(response, ArchiveResponse):
            response.sendfile = self.sendfile
        return response

    def get_file(self) -> DownloadFile:
        return ArchiveFile(
            self.get_members(),
            name=self.get_basename() or "download.zip",
            compress=self.compress,
        )

    def _find_offload(self, file: DownloadFile) -> t.Any:
        # The web server has no file to send: an archive is made by Python.
        return None
