"""URL values converted to the type of the primary key or the slug column."""

from __future__ import annotations

import datetime
import decimal
import re
import typing as t
import uuid

from ..exceptions import FileNotFound
from ._lazy import _import_sqlalchemy

# A decimal integer as a URL may carry it (ASCII digits only: str.isdigit()
# also accepts "²" and other Unicode digits).
_INTEGER = re.compile(r"-?[0-9]{1,20}\Z")
# A decimal number as a URL may carry it (for Numeric and Float keys).
_NUMBER = re.compile(r"-?[0-9]{1,40}(?:\.[0-9]{1,40})?\Z")


def _coerce_pk(value: t.Any, type_: t.Any, session: t.Any, mapper: t.Any) -> t.Any:
    """Convert a URL value to ``type_`` (the key's or the slug's, see
    :func:`_url_type`), or raise FileNotFound."""
    sa_, _ = _import_sqlalchemy()
    try:
        python_type = type_.python_type
    except NotImplementedError:
        python_type = None
    if python_type is int:
        if isinstance(value, str) and _INTEGER.match(value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise FileNotFound(f"{value!r} is not an integer id.")
        if -(2**31) <= value < 2**31:
            return value  # fits every integer column
        # SQLite and BIGINT hold 64-bit signed integers; INTEGER is 32-bit
        # elsewhere. A larger id is no row, not an overflow error (a 500).
        bits = 64
        dialect = session.get_bind(mapper=mapper).dialect.name
        if dialect != "sqlite" and not isinstance(type_, sa_.BigInteger):
            bits = 32
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise FileNotFound(f"No row can have the id {value}.")
        return value
    if python_type is uuid.UUID and not isinstance(value, uuid.UUID):
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise FileNotFound(f"{value!r} is not a UUID.") from None
    if isinstance(value, str):
        # A URL string for a key of another type: converted (or refused)
        # here, as the database would refuse it with an error (PostgreSQL's
        # "invalid input syntax", a 500 that also aborts the transaction).
        value = _coerce_text(value, type_, python_type)
    elif python_type is str:
        # <int:id> for a text key: PostgreSQL has no "varchar = integer".
        value = _as_text(value)
    if isinstance(value, str) and "\x00" in value:
        raise FileNotFound("An id with NUL.")
    return value


def _as_text(value: t.Any) -> t.Any:
    """A URL converter's value (``<int:...>``, ``<uuid:...>``) for a text
    column, as text; anything else as it is."""
    if isinstance(value, (int, uuid.UUID)) and not isinstance(value, bool):
        return str(value)
    return value


def _url_type(type_: t.Any) -> t.Any:
    """The type URL values for a column of ``type_`` are converted to.

    A ``TypeDecorator`` that converts bound values itself
    (``process_bind_param``) is given them as they are (see :func:`_is_text`);
    one that does not (it only reads values back its own way, such as a
    ``DateTime`` made timezone-aware) binds what its ``impl`` does.
    """
    sa_, _ = _import_sqlalchemy()
    decorator = sa_.TypeDecorator
    while (
        isinstance(type_, decorator)
        and type(type_).process_bind_param is decorator.process_bind_param
        and type(type_).bind_processor is decorator.bind_processor
    ):
        type_ = type_.impl_instance
    return type_


def _is_text(type_: t.Any) -> bool:
    """Whether a URL string is a value of ``type_`` as it is (text, not an enum).

    A ``TypeDecorator`` with a ``process_bind_param`` counts as text: it may
    take strings for another type (a hashid decoded to an integer).
    """
    sa_, _ = _import_sqlalchemy()
    if isinstance(type_, sa_.TypeDecorator):
        return True
    if isinstance(type_, (sa_.Enum, sa_.Uuid)):
        return False
    try:
        return type_.python_type is str
    except NotImplementedError:
        return True  # unknown: the URL's string, as before


def _coerce_text(value: str, type_: t.Any, python_type: t.Any) -> t.Any:
    """``value`` as ``type_`` takes it, or :exc:`FileNotFound`."""
    sa_, _ = _import_sqlalchemy()
    if isinstance(type_, sa_.Enum):
        if value not in type_.enums:
            raise FileNotFound(f"{value!r} is none of {type_.enums!r}.")
        return value
    if isinstance(type_, sa_.Uuid):
        # Uuid(as_uuid=False): strings, which the database still parses.
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise FileNotFound(f"{value!r} is not a UUID.") from None
    if python_type is decimal.Decimal or python_type is float:
        if not _NUMBER.match(value):
            raise FileNotFound(f"{value!r} is not a number.")
        return python_type(value)
    if python_type in (datetime.datetime, datetime.date, datetime.time):
        try:
            return python_type.fromisoformat(value)
        except ValueError:
            raise FileNotFound(f"{value!r} is not a {python_type.__name__}.") from None
    return value
