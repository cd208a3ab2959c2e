"""File wrappers: what a download view serves.

A wrapper tells what it knows about its source (:attr:`~DownloadFile.name`,
:attr:`~DownloadFile.size`, :attr:`~DownloadFile.modified_time`,
:attr:`~DownloadFile.etag`, :attr:`~DownloadFile.url`) and ``None`` for the
rest, and reads the bytes as an iterator of chunks.
"""

from __future__ import annotations

from ._base import as_index as as_index
from ._base import checked_size as checked_size
from ._base import DEFAULT_CHUNK_SIZE as DEFAULT_CHUNK_SIZE
from ._base import DownloadFile as DownloadFile
from ._base import read_slice as read_slice
from ._forwarding import _Forwarded as _Forwarded
from ._forwarding import _ForwardingFile as _ForwardingFile
from ._local import _FromOffset as _FromOffset
from ._local import _local_file as _local_file
from ._local import _LOCAL_TYPES as _LOCAL_TYPES
from ._local import _LocalFile as _LocalFile
from ._local import _same_file as _same_file
from ._path import _APPEND_PAUSES as _APPEND_PAUSES
from ._path import _hold as _hold
from ._path import _identity as _identity
from ._path import _release as _release
from ._path import _same_or_grown as _same_or_grown
from ._path import _same_root as _same_root
from ._path import _stat_etag as _stat_etag
from ._path import _utc as _utc
from ._path import MAX_HELD_DESCRIPTORS as MAX_HELD_DESCRIPTORS
from ._path import PathFile as PathFile
from ._streams import _is_seekable as _is_seekable
from ._streams import _seek as _seek
from ._streams import _Unclosed as _Unclosed
from ._streams import SizedReader as SizedReader
from ._virtual import _bare_etag as _bare_etag
from ._virtual import _check_virtual_arguments as _check_virtual_arguments
from ._virtual import _chunk_type_error as _chunk_type_error
from ._virtual import _encode_chunks as _encode_chunks
from ._virtual import _text_encoding as _text_encoding
from ._virtual import _TEXT_STREAMS as _TEXT_STREAMS
from ._virtual import VirtualFile as VirtualFile
