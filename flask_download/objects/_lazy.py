"""SQLAlchemy and the column wrappers, imported once on first use."""

from __future__ import annotations

import typing as t

from .._compat import require

_SQLALCHEMY: tuple[t.Any, t.Any] | None = None


def _import_sqlalchemy() -> tuple[t.Any, t.Any]:
    global _SQLALCHEMY
    if _SQLALCHEMY is None:  # once: import_module costs microseconds per call
        _SQLALCHEMY = (
            require("sqlalchemy", "sqlalchemy", "Model downloads"),
            require("sqlalchemy.orm", "sqlalchemy", "Model downloads"),
        )
    return _SQLALCHEMY


_COLUMN_FILES: tuple[t.Any, t.Any] | None = None


def _column_files() -> tuple[t.Any, t.Any]:
    """``BinaryFile`` and ``ColumnFile``, imported once (they need SQLAlchemy)."""
    global _COLUMN_FILES
    if _COLUMN_FILES is None:
        from ..sqlalchemy import BinaryFile
        from ..sqlalchemy import ColumnFile

        _COLUMN_FILES = (BinaryFile, ColumnFile)
    return _COLUMN_FILES
