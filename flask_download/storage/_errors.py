"""Store errors mapped to FileNotFound or StorageUnavailable."""

from __future__ import annotations

import asyncio
import logging
import sys
import typing as t

from flask import current_app
from flask import has_app_context

from ..exceptions import DownloadError
from ..exceptions import FileNotFound
from ..exceptions import StorageUnavailable
from ._keys import _is_local

if t.TYPE_CHECKING:
    from fsspec import AbstractFileSystem

_logger = logging.getLogger("flask_download")


def _storage_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the store failed", not "the code is wrong"."""
    errors: list[type[BaseException]] = [OSError, asyncio.TimeoutError]
    try:
        import botocore.exceptions  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        errors += [
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
        ]
    try:
        import aiohttp
    except ImportError:
        pass
    else:
        errors.append(aiohttp.ClientError)
    return tuple(errors)


_ERRORS: tuple[type[BaseException], ...] | None = None


def _is_refused_name(error: BaseException) -> bool:
    """Whether botocore refused the request's parameters before sending it."""
    botocore = sys.modules.get("botocore.exceptions")
    refused = getattr(botocore, "ParamValidationError", None)
    return refused is not None and isinstance(error, refused)


def _translate(
    fs: AbstractFileSystem, key: str, error: BaseException, action: str
) -> DownloadError | None:
    """Map a store error to FileNotFound / StorageUnavailable (``None``: a bug)."""
    global _ERRORS
    if isinstance(error, DownloadError):
        return error
    if isinstance(error, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return FileNotFound(f"No file at {key!r} in the storage.")
    if _ERRORS is None:
        _ERRORS = _storage_errors()
    if not isinstance(error, _ERRORS):
        return None
    if _is_refused_name(error):
        # botocore refused the name before asking (a client-supplied bucket
        # such as "Bad_Name!"): no object can have it. Not an outage: no 503
        # and no error line in the log for each such URL.
        return FileNotFound(f"No file at {key!r} in the storage: {error}.")
    if _is_local(fs):
        # Like PathFile: an unreadable local file is a missing file.
        return FileNotFound(f"Cannot read {key!r}: {error}.")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    detail = (
        f"Storage {protocol}:// unavailable while {action} {key!r}:"
        f" {type(error).__name__}: {error}".replace("\n", " ")
    )
    logger = current_app.logger if has_app_context() else _logger
    logger.error("%s", detail)
    return StorageUnavailable(detail)
