"""Checks of the field names a view is configured with, and their messages."""

from __future__ import annotations

import difflib
import typing as t

from ..exceptions import ConfigurationError
from ._lazy import _import_sqlalchemy

if t.TYPE_CHECKING:
    from ._view import ObjectDownloadView


# The attributes that name a field of the model, checked by as_view.
_FIELD_ATTRIBUTES = (
    "file_field",
    "basename_field",
    "encoding_field",
    "mime_type_field",
    "charset_field",
    "modification_time_field",
    "size_field",
    "version_field",
)


def _check_fields(
    view: type[ObjectDownloadView],
    model: type[t.Any],
    fields: dict[str, str | None],
) -> None:
    for attribute, field in fields.items():
        if field and not hasattr(model, field):
            raise ConfigurationError(_field_message(view, model, attribute, field))


def _field_message(
    view: type[ObjectDownloadView], model: type[t.Any], attribute: str, field: str
) -> str:
    names = _mapped_names(model)
    message = (
        f"{view.__name__}.{attribute} is {field!r}, but {model.__name__} has no"
        f" attribute {field!r}."
    )
    close = difflib.get_close_matches(field, names, n=1)
    if close:
        message += f" Did you mean {close[0]!r}?"
    if names:
        message += f" {model.__name__} maps: {', '.join(names)}."
    return message + (
        f" Set {attribute} (class attribute or as_view()) to one of them"
        # A slug field of None cannot look the slug of the URL up.
        + (", or None." if attribute not in ("file_field", "slug_field") else ".")
    )


def _composite_message(
    view: type[ObjectDownloadView], model: type[t.Any], keys: t.Any
) -> str:
    names = ", ".join(column.key for column in keys)
    return (
        f"{model.__name__} has a composite primary key ({names}):"
        f" {view.__name__} looks rows up by one key from the URL. Look them"
        " up by a unique column instead (slug_field, with '<slug>' in the"
        f" URL), or override '{view.__name__}.get_object' (for example"
        f" db.session.get({model.__name__}, (..., ...)))."
    )


def _mapped_names(model: type[t.Any]) -> list[str]:
    """The names of ``model``'s mapped attributes, in declaration order."""
    try:
        _, orm_ = _import_sqlalchemy()
    except ImportError:
        return []
    names = []
    for klass in reversed(model.__mro__):
        for name in vars(klass):
            if name.startswith("_") or name in names:
                continue
            value = vars(klass)[name]
            if not isinstance(value, (orm_.QueryableAttribute, property)):
                try:
                    # A hybrid property is a QueryableAttribute once read.
                    value = getattr(model, name, None)
                except Exception:
                    # A class-level descriptor that needs a context, such as
                    # Flask-SQLAlchemy's Model.query outside an app context
                    # (as_view runs at import time): no mapped attribute.
                    continue
            if isinstance(value, (orm_.QueryableAttribute, property)):
                names.append(name)
    return names
