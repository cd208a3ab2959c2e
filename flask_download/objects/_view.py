"""ObjectDownloadView: the view serving the file of a SQLAlchemy row."""

from __future__ import annotations

import datetime
import os
import typing as t

from .. import _direct
from .._context import app_object
from ..conditional import as_utc
from ..exceptions import ConfigurationError
from ..exceptions import FileNotFound
from ..files import DownloadFile
from ..views import DownloadView
from ._coerce import _as_text
from ._coerce import _coerce_pk
from ._fields import _check_fields
from ._fields import _composite_message
from ._fields import _FIELD_ATTRIBUTES
from ._lazy import _column_files
from ._lazy import _import_sqlalchemy
from ._lookup import _Lookup
from ._lookup import _LOOKUPS
from ._lookup import _may_bypass
from ._lookup import _PK
from ._lookup import _probe
from ._lookup import _SLUG
from ._overrides import _overridden
from ._overrides import _readers

if t.TYPE_CHECKING:
    import sqlalchemy as sa
    import sqlalchemy.orm as orm
    from flask.typing import RouteCallable


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
        storage = class_kwargs.get("storage", cls.storage)
        if storage is not None:
            # Row keys are confined to it: a local store needs its folder.
            from ..storage._keys import check_storage_folder

            check_storage_folder(storage, cls.__name__)
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
        ext = app_object().extensions.get("sqlalchemy")
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
            if isinstance(e, _import_sqlalchemy()[0].exc.DBAPIError):
                raise
            # A type that refuses a value from the URL (a TypeDecorator's
            # process_bind_param) refuses the request, like a missing row.
            # Only if the refused value is one of the URL's: those bound by
            # an overridden get_query(), and the application's pending rows
            # the session flushes first (autoflush), are the application's.
            if not _refuses(session, lookup.mapper, statement, params):
                raise
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


_GET_OBJECT = ObjectDownloadView.get_object

#: Stands for the session while an overridden ``get_object`` runs without
#: one (see ``ObjectDownloadView.get_file``).
_NO_SESSION: t.Any = object()


def _refuses(
    session: t.Any, mapper: t.Any, statement: t.Any, params: dict[str, t.Any]
) -> bool:
    """Whether a column type refuses one of the URL's ``params`` as
    ``statement`` binds it (run only once the statement failed)."""
    try:
        dialect = session.get_bind(mapper=mapper).dialect
        binds = statement.compile(dialect=dialect).binds
    except Exception:
        return False
    for name, value in params.items():
        bind = binds.get(name)
        if bind is None:
            continue
        try:
            # The dialect's own implementation, as the statement ran it: a
            # with_variant() type for this dialect, a TypeDecorator over a
            # type whose dialect form converts (SQLite's DateTime...).
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        except Exception:
            continue
        if processor is None:
            continue
        try:
            processor(value)
        except Exception:
            return True
    return False
