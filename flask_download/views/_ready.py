"""Ready views: files on the local disk and content made in Python."""

from __future__ import annotations

import collections.abc as cabc
import os
import typing as t

from flask import current_app

from ..exceptions import ConfigurationError
from ..files import DownloadFile
from ..files import PathFile
from ..files import VirtualFile
from ..paths import ConfinedPath
from ..paths import split_relative
from ..settings import check_root
from ..settings import join_root
from ._base import DownloadView


class PathDownloadView(DownloadView):
    """Serve a file on the local disk.

    Either a fixed :attr:`path`, or the URL variable named by
    :attr:`path_url_kwarg` (``<path:path>``) resolved inside :attr:`root`
    (else ``DOWNLOAD_ROOT``). A URL-supplied path never leaves the root,
    symbolic links included: ``..``, absolute paths, backslashes, control
    characters, Windows device names and links pointing outside give 404.
    The file is opened with :func:`~flask_download.paths.open_confined`,
    which checks the descriptor it serves, not a name: a link swapped in
    while the request runs is never followed out of the root.
    """

    #: A trusted path (absolute, or relative to :attr:`root`). Never set it
    #: from client input: use the URL variable for that.
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None = None
    #: The directory URL paths (and relative :attr:`path`) are resolved in;
    #: ``None`` uses ``DOWNLOAD_ROOT``.
    root: str | os.PathLike[str] | None = None
    #: Name of the URL variable holding a client-supplied path.
    path_url_kwarg: str = "path"

    def get_root(self) -> str | None:
        """The root directory: :attr:`root`, else ``DOWNLOAD_ROOT``.

        :raises ConfigurationError: the root is not an existing directory
            (checked at its first use).
        """
        if self.root is not None:
            return join_root(
                current_app.root_path, self.root, f"{type(self).__name__}.root"
            )
        configured = self._settings().root
        return None if configured is None else check_root(configured, "DOWNLOAD_ROOT")

    def get_path(self) -> str:
        """The local path of the file to send.

        A trusted :attr:`path` is returned as is (joined to the root when
        relative). A URL path is checked and returned as a
        :class:`~flask_download.paths.ConfinedPath`, a string that
        :class:`~flask_download.PathFile` opens confined to the root (so
        ``PathFile(self.get_path())`` in a subclass stays safe); symbolic
        links are resolved when it is opened, not here. An override that
        returns a plain string naming a place under the root (built from
        ``super().get_path()``) has it opened confined too (see
        :meth:`get_file`); a path elsewhere is trusted.

        :raises FileNotFound: a URL path refused outright (``..``...).
        :raises ConfigurationError: no path at all, or a URL path with no root.
        """
        if self.path is not None:
            # A bytes path is spelled as a str (os.fsdecode), as roots are.
            path = os.fsdecode(self.path)
            if os.path.isabs(path):
                return path
            return os.path.join(self.get_root() or current_app.root_path, path)
        untrusted = self.kwargs.get(self.path_url_kwarg)
        if untrusted is None:
            raise ConfigurationError(
                f"{type(self).__name__} needs a 'path' attribute or a"
                f" '<path:{self.path_url_kwarg}>' URL variable."
            )
        root = self.get_root()
        if root is None:
            raise ConfigurationError(
                f"{type(self).__name__} got a path from the URL but has no root to"
                " confine it to: set DOWNLOAD_ROOT in the app config, or pass"
                " root=... to as_view() (or to make_download_blueprint())."
            )
        return ConfinedPath(root, split_relative(str(untrusted)))

    def get_file(self) -> DownloadFile:
        path = self.get_path()
        if type(path) is not ConfinedPath and self.path is None:
            # An overridden get_path() made a plain string: see _reconfined.
            path = self._reconfined(path)
        return PathFile(path)

    def _reconfined(self, path: t.Any) -> t.Any:
        """A plain string an overridden :meth:`get_path` built from the URL
        path (``super().get_path() + ".pdf"``, or the root joined with the
        URL variable), opened confined again when it names a place under the
        root: a symbolic link there, or a ``..``, is refused as for the URL
        path itself. A path elsewhere is the override's own and trusted."""
        if self.kwargs.get(self.path_url_kwarg) is None or not isinstance(
            path, (str, bytes, os.PathLike)
        ):
            return path
        root = self.get_root()
        text = os.fsdecode(path)
        if root is None or not os.path.isabs(text):
            return path
        prefix = root if root.endswith(os.sep) else root + os.sep
        if not text.startswith(prefix):
            return path
        return ConfinedPath(root, split_relative(text[len(prefix) :]))


class VirtualDownloadView(DownloadView):
    """Serve content made in Python.

    Override :meth:`get_file` to return a :class:`~flask_download.VirtualFile`,
    or set :attr:`content` (and :attr:`~flask_download.DownloadMixin.basename`)
    for the simple case.
    """

    #: ``str``, ``bytes`` or a callable returning what :class:`VirtualFile`
    #: accepts (an iterator set here would be used up by the first request).
    #: Text is encoded with :attr:`~flask_download.DownloadMixin.charset`
    #: (default UTF-8).
    content: t.Any = None

    @classmethod
    def _check_attributes(cls, attributes: cabc.Mapping[str, t.Any]) -> None:
        super()._check_attributes(attributes)
        content = attributes.get("content", cls.content)
        if isinstance(content, cabc.Iterator) or hasattr(content, "read"):
            raise ConfigurationError(
                f"{cls.__name__}.content is {type(content).__name__!r}, which the"
                " first request would use up (every later one would get an empty"
                " file): set it to str or bytes, or to a callable that returns a"
                " fresh stream or iterator for each request."
            )

    def get_content(self) -> t.Any:
        """The content: :attr:`content`, called first if it is callable."""
        content = self.content
        if callable(content):
            content = content()
        if content is None:
            raise ConfigurationError(
                f"{type(self).__name__} has no content: set the 'content' attribute"
                " or override 'get_file'."
            )
        return content

    def get_file(self) -> DownloadFile:
        return VirtualFile(
            self.get_content(), name=self.get_basename(), charset=self._text_charset()
        )
