"""The cached lookups: each view's statement, made once, and the rows it reads."""

from __future__ import annotations

import collections.abc as cabc
import typing as t
import weakref

from ..exceptions import ConfigurationError
from ._coerce import _is_text
from ._coerce import _url_type
from ._fields import _composite_message
from ._fields import _field_message
from ._lazy import _import_sqlalchemy

if t.TYPE_CHECKING:
    from ._view import ObjectDownloadView


# -- the cached lookups ------------------------------------------------------

# Names of the bound parameters of a lookup (unlikely to meet a user's own).
_PK = "flask_download_pk"
_SLUG = "flask_download_slug"

#: Per view class: its lookups, by what they depend on.
_LOOKUPS: weakref.WeakKeyDictionary[type[t.Any], dict[t.Any, _Lookup]] = (
    weakref.WeakKeyDictionary()
)


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
            if not isinstance(view.slug_field, str) or not view.slug_field:
                raise ConfigurationError(
                    f"{type(view).__name__}.slug_field is {view.slug_field!r}, but"
                    f" the URL rule has the slug variable '<{view.slug_url_kwarg}>'"
                    " (slug_url_kwarg): set slug_field to the attribute of"
                    f" {model.__name__} holding the slug, or slug_url_kwarg=None."
                )
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
