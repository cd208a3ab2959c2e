"""Streaming ZIP archives: many files as one resumable download.

An :class:`ArchiveFile` lays out a ZIP archive from what its members' wrappers
know (names, sizes, times) without reading a byte of them, so that a stored
archive has an exact size, validators, and byte ranges before the body starts.
Member data is read only when a body needs it, one member open at a time.

The layout is fixed by the members' metadata alone: every entry has a data
descriptor (flag bit 3), so a local header never depends on the CRC-32 of its
data. Only the data descriptor and the central directory record of a member
need its CRC-32, taken from :attr:`~flask_download.DownloadFile.crc32` when the
wrapper knows it, else computed by reading the member once.
"""

from __future__ import annotations

from ._cache import _CRC_CACHE as _CRC_CACHE
from ._cache import _crc_key as _crc_key
from ._cache import _CrcCache as _CrcCache
from ._cache import _RANGE_ANSWERS as _RANGE_ANSWERS
from ._file import ArchiveFile as ArchiveFile
from ._file import file_name as file_name
from ._file import logger as logger
from ._file import Member as Member
from ._format import safe_member_name as safe_member_name
from ._response import ArchiveResponse as ArchiveResponse
from ._response import server_writes as server_writes
from ._view import ZipDownloadView as ZipDownloadView
