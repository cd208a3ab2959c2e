"""Serve files referenced by (or stored in) SQLAlchemy rows.

SQLAlchemy is imported when a view is used, not when this module is, so that
``import flask_download`` needs only Flask.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import decimal
import difflib
import inspect
import os
import re
import types
import typing as t
import uuid
import weakref

from flask import current_app

from . import _direct
from ._compat import require
from .conditional import as_utc
from .exceptions import ConfigurationError
from .exceptions import FileNotFound
from .files import DownloadFile
from .views import DownloadView

if t.TYPE_CHECKING:
    import sqlalchemy as sa
    import sqlalchemy.orm as orm
    from flask.typing import RouteCallable


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
        from .sqlalchemy import BinaryFile
        from .sqlalchemy import ColumnFile

        _COLUMN_FILES = (BinaryFile, ColumnFile)
    return _COLUMN_FILES


# A decimal integer as a URL may carry it (ASCII digits only: str.isdigit()
# also accepts "²" and other Unicode digits).
_INTEGER = re.compile(r"-?[0-9]{1,20}\Z")
# A decimal number as a URL may carry it (for Numeric and Float keys).
_NUMBER = re.compile(r"-?[0-9]{1,40}(?:\.[0-9]{1,40})?\Z")


class ObjectDownloadView(DownloadView):
    """Serve the file of a SQLAlchemy row, found by primary key or slug.

    The row is read with one ``SELECT`` built from :meth:`get_query`,
    narrowed to the URL's ``<int:id>`` (:attr:`pk_url_kwarg`) and/or
    ``<slug>`` (:attr:`slug_url_kwarg`). The file column
    (:attr:`file_field`) holds:

    - a string: a path relative to :attr:`root` (else ``DOWNLOAD_ROOT``),
      or a key in :attr:`storage` when set; it never leaves them;
    - bytes (``LargeBinary``): the content itself (``b""`` is an empty file);
    - a :class:`~flask_download.sqlalchemy.FileColumn` value, resolved under
      the column's own root or storage (else the view's);
    - any :class:`~flask_download.DownloadFile` (a property may build one).

    A missing row, a row outside :meth:`get_query`, a NULL column, a missing
    file, or an id the database cannot hold give 404. Everything the
    response needs is read before the body starts, and the database
    connection is given back first (see :meth:`release_session`)::

        class DocumentDownloadView(ObjectDownloadView):
            model = Document
            basename_field = "filename"

            def get_query(self):
                # Other users' rows are 404, like missing ones.
                return super().get_query().where(Document.owner_id == current_user.id)

        bp.add_url_rule(
            "/documents/<int:id>", view_func=DocumentDownloadView.as_view("document")
        )
    """

    #: The mapped class whose rows hold the files.
    model: type[t.Any] | None = None
    #: The attribute holding the file (string key, bytes, or FileColumn value).
    file_field: str = "file"
    #: Attribute with the client-side file name (the view's ``basename`` wins).
    basename_field: str | None = None
    #: Attribute with the ``Content-Encoding`` (``gzip``...).
    encoding_field: str | None = None
    #: Attribute with the media type (the view's ``mimetype`` wins).
    mime_type_field: str | None = None
    #: Attribute with the charset of ``text/*`` files.
    charset_field: str | None = None
    #: Attribute with the last modification (``Last-Modified``); naive means UTC.
    modification_time_field: str | None = None
    #: Attribute with the size in bytes, used when the file cannot tell.
    size_field: str | None = None
    #: Attribute with the CRC-32 of the content (an ``int``), stored when the
    #: file was saved: :class:`~flask_download.ArchiveFile` uses it to answer
    #: ranges of a ZIP without reading the whole member.
    crc32_field: str | None = None
    #: Attribute that changes whenever the content does (a version counter or
    #: an ``updated_at``): the ETag of ``LargeBinary`` content is made from it
    #: instead of a hash of the content.
    version_field: str | None = None
    #: URL variable holding the primary key.
    pk_url_kwarg: str = "id"
    #: URL variable holding the slug.
    slug_url_kwarg: str = "slug"
    #: Attribute of :attr:`model` the slug is looked up in (should be unique).
    slug_field: str = "slug"
    #: A ``Session``, ``scoped_session`` or ``sessionmaker``; ``None`` uses
    #: Flask-SQLAlchemy's ``db.session`` of the current app.
    session: t.Any = None
    #: Directory string keys are relative to; ``None`` uses ``DOWNLOAD_ROOT``.
    root: str | os.PathLike[str] | None = None
    #: An fsspec filesystem or URL string keys live in instead of :attr:`root`.
    storage: t.Any = None
    #: What :meth:`get_object` loads for a request: ``False``, a row of the
    #: fields the download needs (the fastest); ``True``, the mapped
    #: instance. ``None`` (the default) chooses the row unless the class
    #: overrides a method that may read other attributes of :attr:`object`
    #: (anything but :meth:`get_query`, :meth:`get_session`,
    #: :meth:`get_model` and :meth:`release_session`) or a field is not a
    #: plain column (a Python property, a relationship).
    load_instance: bool | None = None
    # Whether the lookup reads a row of fields (see _loads_rows), once per request.
    _rows_memo: bool

    #: The row of the current request, once :meth:`get_object` found it: the
    #: mapped instance, or an object holding just the download's fields as
    #: attributes (see :attr:`load_instance`).
    object: t.Any

    # -- configuration checks -------------------------------------------------

    @classmethod
    def as_view(
        cls, name: str, *class_args: t.Any, **class_kwargs: t.Any
    ) -> RouteCallable:
        """Make a view function, checking the field names against the model.

        :raises TypeError: a keyword names no attribute of the class.
        :raises ConfigurationError: a ``*_field`` names no attribute of
            :attr:`model` (the message lists the mapped ones), or the model
            has a composite primary key and neither a slug field nor an
            overridden :meth:`get_object` to find rows with.
        """
        view = super().as_view(name, *class_args, **class_kwargs)
        # Checked once here, never per request. A subclass that reads the row
        # its own way (file_from_object overridden) may use other names.
        if cls.file_from_object is ObjectDownloadView.file_from_object:
            model = class_kwargs.get("model", cls.model)
            if model is not None:
                _check_fields(
                    cls,
                    model,
                    {
                        field: class_kwargs.get(field, getattr(cls, field))
                        for field in _FIELD_ATTRIBUTES
                    },
                )
        model = class_kwargs.get("model", cls.model)
        if (
            model is not None
            and cls.get_object is _GET_OBJECT
            and "get_object" not in class_kwargs
            and class_kwargs.get("pk_url_kwarg", cls.pk_url_kwarg)
        ):
            # A slug lookup may serve a model with a composite key: then the
            # check waits for a request with the key in the URL.
            slug_field = class_kwargs.get("slug_field", cls.slug_field)
            if not (slug_field and hasattr(model, slug_field)):
                mapper = _import_sqlalchemy()[0].inspect(model, raiseerr=False)
                keys = getattr(mapper, "primary_key", ())
                if len(keys) > 1:
                    raise ConfigurationError(_composite_message(cls, model, keys))
        return view

    def _lookup_error(self) -> ConfigurationError:
        # The route has neither URL variable this view looks the row up by.
        names = sorted(self.kwargs)
        message = (
            f"{type(self).__name__} needs the primary key in the URL variable"
            f" '<{self.pk_url_kwarg}>' (pk_url_kwarg) or the slug in"
            f" '<{self.slug_url_kwarg}>' (slug_url_kwarg)"
        )
        if not names:
            return ConfigurationError(
                f"{message}; the URL rule has no variables. Add one to the rule,"
                " or override 'get_object'."
            )
        found = ", ".join(repr(name) for name in names)
        message += f"; the URL rule has {found}."
        if len(names) == 1:
            message += (
                f" If {names[0]!r} holds the primary key, set"
                f" pk_url_kwarg={names[0]!r} (class attribute or as_view());"
                f" if it holds the slug, set slug_url_kwarg={names[0]!r}."
            )
        return ConfigurationError(
            f"{message} Or rename the variable in the rule, or override 'get_object'."
        )

    def get_cache_control(self) -> str:
        """``Cache-Control``: ``private`` unless the view says otherwise.

        Rows are usually per user (see :meth:`get_query`), so a shared cache
        must not keep one user's file for another: ``private, no-cache``, or
        ``private, max-age=N`` with ``DOWNLOAD_CACHE_MAX_AGE``. A
        :attr:`~flask_download.DownloadMixin.cache_control` set on the view
        is sent as it is.
        """
        value = super().get_cache_control()
        return value if self.cache_control is not None else f"private, {value}"

    # -- the row --------------------------------------------------------------

    def get_session(self) -> orm.Session:
        """The session to query: :attr:`session`, else Flask-SQLAlchemy's.

        :raises ConfigurationError: no session attribute and no Flask-SQLAlchemy.
        """
        if self.session is not None:
            return t.cast("orm.Session", self.session)
        ext = current_app.extensions.get("sqlalchemy")
        if ext is None:
            raise ConfigurationError(
                f"{type(self).__name__} has no database session: register"
                " Flask-SQLAlchemy on the app (db.init_app(app)) or set the"
                " 'session' attribute."
            )
        return t.cast("orm.Session", ext.session)

    def get_model(self) -> type[t.Any]:
        """The mapped class rows are read from: :attr:`model`.

        :raises ConfigurationError: no model is set.
        """
        if self.model is None:
            raise ConfigurationError(
                f"{type(self).__name__} needs a 'model': set it as a class"
                " attribute or pass model=... to as_view()."
            )
        return self.model

    def get_query(self) -> sa.Select[t.Any]:
        """The ``select()`` the row is looked up in: all rows of :attr:`model`.

        Override it to narrow the rows (to the current user's, to published
        ones...): a row outside it is answered 404, exactly like a missing one.
        It may select an alias of the model, a subclass of it or an alias
        of one (``aliased(Model)``, an entity over a subquery,
        ``with_polymorphic``): the key and the fields are then read from
        that entity. A base class of the model (or an alias of one), or a
        class outside its hierarchy selected without the model, is a
        :exc:`~flask_download.ConfigurationError`: its rows are not all
        rows of the model (join such a class to the model instead). A
        legacy :class:`~sqlalchemy.orm.Query` (``Model.query.filter_by(...)``)
        is taken as its ``select()``.
        """
        sa_, _ = _import_sqlalchemy()
        return t.cast("sa.Select[t.Any]", sa_.select(self.get_model()))

    def get_object(self) -> t.Any:
        """Return the row of this request, with one ``SELECT``.

        Filters :meth:`get_query` by the primary key in
        ``kwargs[pk_url_kwarg]`` and/or the slug in ``kwargs[slug_url_kwarg]``.
        The statement is built once per view class and model, with bound
        parameters for the key, and reused by every request (a
        :meth:`get_query` override is called for each request, its result
        narrowed the same way).

        While :meth:`get_file` serves a request, what comes back is a row
        holding only the fields the download needs (:attr:`file_field`,
        :attr:`basename_field`...), each under its attribute name, unless
        :attr:`load_instance` asks for the mapped instance (see there).
        Called directly, it returns the mapped instance. Either way, fields
        the download needs are loaded by the same query even if they are
        deferred.

        Override it to find the row another way (a composite key, another
        store, ``db.session.get(Document, self.kwargs["id"])``). The override
        is used on its own: a session is required only when it calls this
        default (``super().get_object()``). It may return ``None`` for "no
        such row" (what :meth:`~sqlalchemy.orm.Session.get` gives): that is
        answered 404, like raising :exc:`~flask_download.FileNotFound`.

        :raises FileNotFound: no such row (also for ids the database cannot
            hold, such as 2**63 and up or non-integers for integer keys, and
            for URL values a ``Numeric``, ``Date``, ``DateTime``, ``Time``,
            ``Uuid`` or ``Enum`` key or slug column cannot take: refused
            before any SQL is sent).
        :raises ConfigurationError: the URL has neither variable, there is
            no session (see :meth:`get_session`), the model has a composite
            primary key and the URL holds a key, or :meth:`get_query` selects
            a base class of the model or only classes outside its hierarchy.
        """
        session = self.__dict__.get("_session")
        if session is None:
            session = self.get_session()  # called directly, not by get_file
        elif session is _NO_SESSION:
            # An overridden get_object calling this one: the session is
            # needed now (and raises the error saying why there is none).
            session = self._open_session(self.get_session())
        pk = self.kwargs.get(self.pk_url_kwarg)
        slug = self.kwargs.get(self.slug_url_kwarg)
        if pk is None and slug is None:
            raise self._lookup_error()
        lookup = self._lookup(session, pk is not None, slug is not None)
        params: dict[str, t.Any] = {}
        if pk is not None:
            params[_PK] = _coerce_pk(pk, lookup.pk_type, session, lookup.mapper)
        if slug is not None:
            if lookup.slug_type is not None:
                # A slug column of another type than text (a date, a number,
                # an enum, a UUID): converted or refused as a primary key is.
                slug = _coerce_pk(slug, lookup.slug_type, session, lookup.mapper)
            else:
                if not isinstance(slug, str):
                    # <int:slug>, <uuid:slug> for a text column: as text.
                    slug = _as_text(slug)
                if not isinstance(slug, str) or "\x00" in slug:
                    raise FileNotFound(
                        f"No {lookup.model.__name__} with slug {slug!r}."
                    )
            params[_SLUG] = slug
        statement = lookup.statement
        if statement is None:
            # get_query() is overridden: narrow its statement for this request.
            query = self.get_query()
            if not hasattr(query, "with_only_columns"):
                query = self._statement_of(query)
            if lookup.row_class is not None and bool(
                getattr(query, "_with_options", None)
            ):
                # Loader options (joinedload...) need the entity in the SELECT.
                lookup = self._lookup(session, pk is not None, slug is not None, False)
            statement = lookup.narrow(query, custom=True)
        try:
            return self._read(session, lookup, statement, params)
        except _import_sqlalchemy()[0].exc.StatementError as e:
            if statement is not lookup.statement or isinstance(
                e, _import_sqlalchemy()[0].exc.DBAPIError
            ):
                raise
            # Every value bound into the view's own statement comes from the
            # URL: a type that refuses one (a TypeDecorator's
            # process_bind_param) refuses the request, like a missing row.
            refused = getattr(e, "orig", e)
            raise FileNotFound(
                f"No {lookup.model.__name__} can match {self.kwargs!r}: {refused!r}."
            ) from e

    def _statement_of(self, query: t.Any) -> t.Any:
        """The ``select()`` of a legacy :class:`~sqlalchemy.orm.Query` (such
        as Flask-SQLAlchemy's ``Model.query.filter_by(...)``) returned by
        :meth:`get_query`.

        :raises ConfigurationError: ``query`` is neither.
        """
        _, orm_ = _import_sqlalchemy()
        if isinstance(query, orm_.Query):
            return query.statement
        raise ConfigurationError(
            f"{type(self).__name__}.get_query() must return a SQLAlchemy"
            f" select() of {self.get_model().__name__}, not"
            f" {type(query).__name__}."
        )

    def _read(
        self,
        session: t.Any,
        lookup: _Lookup,
        statement: t.Any,
        params: dict[str, t.Any],
    ) -> t.Any:
        """Run ``statement`` with ``params``; the row (or instance) found."""
        if lookup.core and _may_bypass(session):
            # A plain Core SELECT and a session with no transaction yet: read
            # on a connection of our own, back in the pool right after.
            bind = session.get_bind(mapper=lookup.mapper)
            if isinstance(bind, _import_sqlalchemy()[0].engine.Engine):
                # (A core lookup is never narrowed per request: its own
                # statement.)
                read = _direct.direct_read(
                    lookup.reads, statement, bind, lookup.columns
                )
                if read is not None:
                    try:
                        found = read.fetch(bind, params)
                    except _direct.Unsupported:
                        pass  # a driver error: SQLAlchemy's own, below
                    else:
                        return self._row(lookup, found)
                with bind.connect() as connection:
                    found = connection.execute(statement, params).first()
                return self._row(lookup, found)
        lazy = self.__dict__.pop("_lazy_session", None)
        if lazy is not None:
            # get_file deferred making the session: the lookup needs it now.
            session = self._session = lazy()
        result = session.execute(statement, params)
        if lookup.row_class is None:
            row = result.scalars().first()
            if row is None:
                raise FileNotFound(
                    f"No {lookup.model.__name__} matches {self.kwargs!r}."
                )
            return row
        return self._row(lookup, result.first())

    def _row(self, lookup: _Lookup, found: t.Any) -> t.Any:
        if found is None:
            raise FileNotFound(f"No {lookup.model.__name__} matches {self.kwargs!r}.")
        assert lookup.row_class is not None
        return lookup.row_class(zip(lookup.names, found, strict=True))

    def _lookup(
        self, session: t.Any, by_pk: bool, by_slug: bool, rows: bool | None = None
    ) -> _Lookup:
        """The statement of this view's lookups, made once and cached."""
        model = self.get_model()
        fields = tuple(self._fields())
        custom_query = (
            "get_query" in self.__dict__
            or type(self).get_query is not ObjectDownloadView.get_query
        )
        if rows is None:
            # Rows only while get_file serves the request: code calling
            # get_object itself gets the mapped instance, as it always did.
            rows = "_session" in self.__dict__ and self._loads_rows()
        # Session events may rewrite ORM statements (global criteria, such as
        # a tenant filter): then the statement stays an ORM one. A scoped
        # session (get_object called outside get_file) cannot tell: ORM too.
        dispatch = getattr(session, "dispatch", None)
        orm_events = dispatch is None or bool(dispatch.do_orm_execute)
        key = (
            model,
            fields,
            by_pk,
            by_slug,
            self.slug_field,
            custom_query,
            rows,
            orm_events,
        )
        cache = _LOOKUPS.get(type(self))
        if cache is None:
            cache = _LOOKUPS[type(self)] = {}
        lookup = cache.get(key)
        if lookup is None:
            lookup = cache[key] = _Lookup.build(
                self, model, fields, by_pk, by_slug, custom_query, rows, orm_events
            )
        return lookup

    def _loads_rows(self) -> bool:
        """Whether a row of the fields suffices (no overridden method may
        read other attributes of :attr:`object`)."""
        memo: bool | None = self.__dict__.get("_rows_memo")
        if memo is not None:
            return memo  # asked by get_file, then by the lookup
        if self.load_instance is not None:
            memo = not self.load_instance
        else:
            overridden = _overridden(type(self))
            if self.__dict__:
                # as_view(name, get_basename=...) sets methods per instance too.
                overridden = overridden or not _readers().keys().isdisjoint(
                    self.__dict__
                )
            memo = not overridden
        self._rows_memo = memo
        return memo

    def _fields(self) -> list[str]:
        return [
            name
            for attribute in (*_FIELD_ATTRIBUTES, "crc32_field")
            if (name := getattr(self, attribute))
        ]

    # -- the file -------------------------------------------------------------

    def get_file(self) -> DownloadFile:
        """Find the row and make the wrapper of its file, then free the session.

        :raises FileNotFound: no row (:meth:`get_object` raised it or returned
            ``None``), a NULL column, or a missing file.
        """
        if "get_object" in self.__dict__ or type(self).get_object is not _GET_OBJECT:
            # An overridden get_object may find the row without a session:
            # one that is configured is handled as usual (given back before
            # the body); without one, the override runs on its own.
            try:
                source = self.get_session()
            except ConfigurationError:
                self._session = _NO_SESSION
            else:
                self._open_session(source)
        else:
            self._open_session(self.get_session())
        try:
            obj = self.object = self.get_object()
            if obj is None:
                raise FileNotFound(
                    f"{type(self).__name__}.get_object() found no row for"
                    f" {self.kwargs!r}."
                )
            return self.file_from_object(obj)
        finally:
            self._close_session()

    def _open_session(self, source: t.Any) -> t.Any:
        """The session of this request, from :meth:`get_session`'s ``source``.

        Kept on the view until :meth:`_close_session`.
        """
        _, orm_ = _import_sqlalchemy()
        owned = isinstance(source, orm_.sessionmaker)
        scoped = not owned and isinstance(source, orm_.scoped_session)
        if self._loads_rows() and (owned or (scoped and not source.registry.has())):
            # A session this request does not have yet is made only if the
            # lookup needs one: a plain SELECT on a pooled connection does not.
            session = _probe(source)
            self._lazy_session = source
        elif owned or scoped:
            # Our own session, or the one of this thread (or greenlet, or
            # app context).
            session = source()
        else:
            session = source
        self._session_end = (owned, not session.in_transaction())
        self._session = session
        return session

    def _close_session(self) -> None:
        """Give back the session of :meth:`_open_session`, if one was opened."""
        session = self.__dict__.pop("_session")
        end = self.__dict__.pop("_session_end", None)
        if end is None:
            return  # the overridden get_object needed none
        owned, began = end
        if self.__dict__.pop("_lazy_session", None) is not None:
            pass  # no session was made: nothing to give back
        elif owned:
            # Our own session: close it, the row was read already.
            session.close()
        else:
            self.release_session(session, began)

    def file_from_object(self, obj: t.Any) -> DownloadFile:
        """Make the wrapper of ``obj``'s file, reading every field it needs now.

        :raises FileNotFound: the column is NULL or names no file.
        """
        value = getattr(obj, self.file_field)
        basename = self._value(obj, self.basename_field, str)
        modified = self._value(obj, self.modification_time_field, datetime.datetime)
        if modified is not None:
            modified = as_utc(modified)  # naive datetimes from the database mean UTC
        file: DownloadFile
        if value is None:
            raise FileNotFound(f"{obj!r} has no file ({self.file_field} is NULL).")
        if isinstance(value, (bytes, bytearray, memoryview)):
            binary_file = _column_files()[0]
            version = getattr(obj, self.version_field) if self.version_field else None
            file = binary_file(
                value, name=basename, modified_time=modified, version=version
            )
        else:
            if isinstance(value, str):
                value = _column_files()[1](value)
            if hasattr(value, "resolve"):
                # A FileColumn value: its own root/storage, else the view's.
                file = value.resolve(root=self.root, storage=self.storage)
            elif isinstance(value, DownloadFile):
                file = value
            else:
                raise ConfigurationError(
                    f"{type(obj).__name__}.{self.file_field} holds a"
                    f" {type(value).__name__}; ObjectDownloadView serves strings"
                    " (paths or storage keys), bytes, FileColumn values and"
                    " DownloadFile wrappers."
                )
            if basename is not None:
                file.name = basename
            if modified is not None:
                file.modified_time = modified
            if file.size is None:
                size = self._value(obj, self.size_field, int)
                if size is not None and size >= 0:
                    # (A negative size, such as -1 for "unknown", is none:
                    # never a Content-Length.)
                    file.size = size
        crc32 = self._value(obj, self.crc32_field, int)
        if crc32 is not None:
            file.crc32 = crc32
        for attr, field in (
            ("mimetype", self.mime_type_field),
            ("encoding", self.encoding_field),
            ("charset", self.charset_field),
        ):
            text = self._value(obj, field, str)
            if text:
                setattr(file, attr, text)
        return file

    def _value(self, obj: t.Any, field: str | None, kind: type[t.Any]) -> t.Any:
        if not field:
            return None
        value = getattr(obj, field)
        if value is None or isinstance(value, kind) and not isinstance(value, bool):
            return value
        raise ConfigurationError(
            f"{type(obj).__name__}.{field} must hold a {kind.__name__} (or None),"
            f" not {type(value).__name__}."
        )

    def release_session(self, session: orm.Session, began: bool) -> None:
        """Give the database connection back before the body is sent.

        Called once the row is read and the wrapper made (which holds plain
        values only, never the row). When this view's ``SELECT`` began the
        session's transaction and nothing is pending, the read-only
        transaction is rolled back, so the connection returns to the pool
        right away: a slow download never holds one. A transaction the
        application began earlier in the request is left alone (it ends at
        teardown, as usual). Override it to do otherwise.

        :param began: whether the session had no transaction before the view.
        """
        if not began or not session.in_transaction():
            return
        if session.new or session.dirty or session.deleted:
            return
        session.rollback()


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
        + (", or None." if attribute != "file_field" else ".")
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
            value = getattr(model, name, None)
            if isinstance(value, (orm_.QueryableAttribute, property)):
                names.append(name)
    return names


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


# -- the cached lookups ------------------------------------------------------

_GET_OBJECT = ObjectDownloadView.get_object

#: Stands for the session while an overridden ``get_object`` runs without
#: one (see ``ObjectDownloadView.get_file``).
_NO_SESSION: t.Any = object()

# Names of the bound parameters of a lookup (unlikely to meet a user's own).
_PK = "flask_download_pk"
_SLUG = "flask_download_slug"

#: Methods that never see the row: overriding them keeps the row fast path.
_ROW_SAFE = frozenset(("get_query", "get_session", "get_model", "release_session"))


def _methods(cls: type[t.Any]) -> dict[str, t.Any]:
    found = {}
    for name in dir(cls):
        if name.startswith("__"):
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, (types.FunctionType, classmethod, staticmethod)):
            found[name] = static
    return found


_BASE_METHODS: dict[str, t.Any] | None = None
#: Per view class: whether it overrides a method that may read the row.
_OVERRIDDEN: weakref.WeakKeyDictionary[type[t.Any], bool] = weakref.WeakKeyDictionary()
#: Per view class: its lookups, by what they depend on.
_LOOKUPS: weakref.WeakKeyDictionary[type[t.Any], dict[t.Any, _Lookup]] = (
    weakref.WeakKeyDictionary()
)


def _readers() -> dict[str, t.Any]:
    global _BASE_METHODS
    if _BASE_METHODS is None:
        methods = _methods(ObjectDownloadView)
        _BASE_METHODS = {k: v for k, v in methods.items() if k not in _ROW_SAFE}
    return _BASE_METHODS


def _overridden(cls: type[t.Any]) -> bool:
    """Whether ``cls`` overrides a method that may read ``self.object``."""
    found = _OVERRIDDEN.get(cls)
    if found is None:
        base = _readers()
        found = _OVERRIDDEN[cls] = any(
            inspect.getattr_static(cls, name) is not method
            for name, method in base.items()
        )
    return found


def _probe(lazy: t.Any) -> t.Any:
    """A session of ``lazy``'s factory that never runs a statement.

    Asked only for its listeners and binds while a request has no session
    of its own; one per factory, kept on the factory (a session refers back
    to it through Flask-SQLAlchemy's ``db``: a weak mapping would never let
    either go).
    """
    factory = getattr(lazy, "session_factory", lazy)  # scoped_session or maker
    probe = factory.__dict__.get("_flask_download_probe")
    if probe is None:
        probe = factory._flask_download_probe = factory()
    return probe


def _may_bypass(session: t.Any) -> bool:
    """Whether a read-only Core ``SELECT`` may skip ``session``'s transaction.

    Only when it has none yet (else the application's own work in it must be
    seen) and nothing listens to its transactions or ORM statements (an
    ``after_begin`` hook may set up the connection, say a row-level
    security variable).
    """
    dispatch = session.dispatch
    return not (
        session.in_transaction()
        # Options given to Session(execution_options=...) apply to its
        # statements (a schema_translate_map, an isolation level...).
        or getattr(session, "execution_options", None)
        or dispatch.after_begin
        or dispatch.after_transaction_create
        or dispatch.do_orm_execute
    )


class _Row:
    """The download's fields of one row, as attributes (see ``load_instance``)."""

    def __init__(self, values: cabc.Iterable[tuple[str, t.Any]]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"<{type(self).__name__} {fields}>"


class _Lookup:
    """One view's lookup: its statement with bound parameters, made once."""

    def __init__(
        self,
        model: type[t.Any],
        mapper: t.Any,
        pk_column: t.Any,
        rows: type[_Row] | None,
        columns: list[t.Any],
        criteria: list[t.Any],
        options: list[t.Any],
        statement: t.Any,
    ) -> None:
        self.model = model
        self.mapper = mapper
        self.pk_column = pk_column
        #: The class rows are returned as, or ``None`` for mapped instances.
        self.row_class = rows
        self.columns = columns
        self.criteria = criteria
        self.options = options
        #: ``None`` when ``get_query`` is overridden (built per request).
        self.statement = statement
        #: Whether the statement is a Core one (no ORM compilation needed).
        self.core = False
        #: Per engine: the statement's direct read (see ``_direct``).
        self.reads: weakref.WeakKeyDictionary[t.Any, t.Any] = (
            weakref.WeakKeyDictionary()
        )
        #: The fields, in the order of the row's columns.
        self.names: list[str] = []
        #: The attribute names the primary key and the slug are compared
        #: with (for a ``get_query`` selecting an alias of the model).
        self.pk_key: str | None = None
        self.slug_key: str | None = None
        #: The type URL values for the key are converted to (see _url_type).
        self.pk_type: t.Any = None
        #: The slug's type when URL values must be converted to it (``None``
        #: for text columns: the URL's string is compared as is).
        self.slug_type: t.Any = None

    @classmethod
    def build(
        cls,
        view: ObjectDownloadView,
        model: type[t.Any],
        fields: tuple[str, ...],
        by_pk: bool,
        by_slug: bool,
        custom_query: bool,
        rows: bool,
        orm_events: bool,
    ) -> _Lookup:
        sa_, orm_ = _import_sqlalchemy()
        mapper = sa_.inspect(model)
        names = list(dict.fromkeys(fields))
        props = {prop.key: prop for prop in mapper.column_attrs}
        if rows and not all(
            name in props and len(props[name].columns) == 1 for name in names
        ):
            rows = False  # a property, a relationship, a composite: the instance
        table = mapper.local_table
        # A plain table, no inheritance: its columns can be selected without
        # the ORM (which would add what single-table inheritance needs, or
        # join the tables of joined inheritance).
        core = (
            rows
            and not custom_query
            and not orm_events
            and isinstance(table, sa_.Table)
            and mapper.inherits is None
            and mapper.persist_selectable is table
            and all(props[name].columns[0].table is table for name in names)
        )
        criteria = []
        pk_column = slug_type = None
        if by_pk:
            keys = mapper.primary_key
            if len(keys) != 1:
                raise ConfigurationError(_composite_message(type(view), model, keys))
            pk_column = keys[0]
            criteria.append(pk_column == sa_.bindparam(_PK))
        if by_slug:
            slug = getattr(model, view.slug_field, None)
            if slug is None:
                raise ConfigurationError(
                    _field_message(type(view), model, "slug_field", view.slug_field)
                )
            slug_prop = props.get(view.slug_field)
            if slug_prop is not None and len(slug_prop.columns) == 1:
                url_type = _url_type(slug_prop.columns[0].type)
                if core:
                    slug = slug_prop.columns[0]
                    core = slug.table is table
            else:
                # A hybrid property: the type of its SQL expression.
                url_type = _url_type(getattr(slug, "type", None))
            if url_type is not None and not _is_text(url_type):
                slug_type = url_type
            criteria.append(slug == sa_.bindparam(_SLUG))
        columns: list[t.Any] = []
        options: list[t.Any] = []
        row_class = None
        if rows:
            row_class = type(model.__name__, (_Row,), {"__module__": __name__})
            for name in names:
                column = props[name].columns[0] if core else getattr(model, name)
                columns.append(column.label(name))
        else:
            # Deferred columns the response reads, loaded in this same SELECT.
            options = [
                orm_.undefer(getattr(model, name))
                for name in names
                if name in props and props[name].deferred
            ]
        lookup = cls(
            model, mapper, pk_column, row_class, columns, criteria, options, None
        )
        lookup.names = names
        lookup.slug_type = slug_type
        if pk_column is not None:
            lookup.pk_type = _url_type(pk_column.type)
            lookup.pk_key = mapper.get_property_by_column(pk_column).key
        if by_slug:
            lookup.slug_key = view.slug_field
        if core:
            lookup.core = True
        if not custom_query:
            lookup.statement = lookup.narrow(
                sa_.select(*columns) if rows else sa_.select(model)
            )
        return lookup

    def narrow(self, query: t.Any, custom: bool = False) -> t.Any:
        """``query`` (of the model) narrowed to this lookup's row and fields.

        ``custom``: ``query`` comes from an overridden ``get_query``, which
        may select an alias of the model (``aliased(Model)``, an entity over
        a subquery, ``with_polymorphic``): the fields and the key are then
        taken from that alias. Compared on the model's own table instead,
        they would add a second, unrelated ``FROM`` (a cartesian product)
        or drop the subquery, and serve rows outside ``get_query``.
        """
        columns, criteria, options = self.columns, self.criteria, self.options
        if custom:
            entity = self._entity(query)
            if entity is not None:
                columns, criteria, options = self._adapted(entity)
        if columns:
            query = query.with_only_columns(*columns)
        query = query.where(*criteria)
        if options:
            query = query.options(*options)
        return query.limit(1)

    def _entity(self, query: t.Any) -> t.Any:
        """The alias of the model (or of a subclass) ``query`` selects, or
        ``None`` when it selects the model itself (or no entity of it).

        :raises ConfigurationError: ``query`` selects a base class of the
            model, or only classes outside its hierarchy.
        """
        sa_, _ = _import_sqlalchemy()
        other = None
        for description in getattr(query, "column_descriptions", ()):
            entity = description.get("entity")
            if entity is None:
                continue
            if entity is self.model:
                return None
            info = sa_.inspect(entity, raiseerr=False)
            mapper = getattr(info, "mapper", None)
            if mapper is None:
                continue
            if mapper.isa(self.mapper):
                # An alias of the model, a subclass of it or an alias of one
                # (``select(Invoice)`` for a ``Document`` model): the fields
                # read as the model's would replace the entity, leaving its
                # tables another FROM (any row would match).
                return entity
            if self.mapper.isa(mapper):
                # A base class of the model, or an alias of one: the model's
                # key compared on its own tables would add another FROM (a
                # cartesian product: any row of get_query would match), and
                # the base's rows are not all rows of the model.
                raise ConfigurationError(self._base_entity_message(entity))
            # Another class (a sibling in the hierarchy, an unrelated model):
            # the same cartesian product, unless the model is selected too.
            if other is None:
                other = entity
        if other is not None:
            raise ConfigurationError(self._other_entity_message(other))
        return None

    def _other_entity_message(self, entity: t.Any) -> str:
        model = self.model.__name__
        other = getattr(entity, "__name__", None) or repr(entity)
        return (
            f"get_query() of the view for {model} selects {other}, which is"
            f" neither {model} nor a subclass of it: the lookup cannot narrow"
            f" it to one {model} row. Select the model (or an alias or a"
            f" subclass of it), joined to {other} if the rows depend on it,"
            " or set model to the class get_query() selects."
        )

    def _base_entity_message(self, entity: t.Any) -> str:
        model = self.model.__name__
        base = getattr(entity, "__name__", None) or repr(entity)
        return (
            f"get_query() of the view for {model} selects {base}, a base class"
            f" of {model} (or an alias of one): the lookup cannot narrow it to"
            f" one {model} row. Select the model or an alias of it"
            f" (select(aliased({model})), with_polymorphic({model}, ...)), or"
            f" set model to the class get_query() selects."
        )

    def _adapted(self, entity: t.Any) -> tuple[list[t.Any], list[t.Any], list[t.Any]]:
        """The columns, criteria and options of this lookup on ``entity``."""
        sa_, orm_ = _import_sqlalchemy()
        columns = (
            [getattr(entity, name).label(name) for name in self.names]
            if self.columns
            else []
        )
        criteria = []
        if self.pk_key is not None:
            criteria.append(getattr(entity, self.pk_key) == sa_.bindparam(_PK))
        if self.slug_key is not None:
            criteria.append(getattr(entity, self.slug_key) == sa_.bindparam(_SLUG))
        options = []
        if self.options:
            # Deferred columns the response reads, as in build().
            props = self.mapper.column_attrs
            options = [
                orm_.undefer(getattr(entity, name))
                for name in self.names
                if name in props and props[name].deferred
            ]
        return columns, criteria, options
