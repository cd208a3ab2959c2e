"""One-row reads on a pooled DBAPI connection, for ObjectDownloadView.

A download's lookup is one small ``SELECT`` of a few columns by key. Run
through SQLAlchemy's :class:`~sqlalchemy.engine.Connection`, most of its
cost is the machinery around the driver: a ``Connection`` and an execution
context per call, the compiled-cache lookup, parameter and result set-up.
When nothing could tell the difference (no engine or dialect event
listeners, no SQL logging, no execution options, one of the tested
:data:`DRIVERS`, whose ``execute`` the dialect calls as is),
:class:`DirectRead` runs the same SQL, compiled once per engine, on a
connection checked out from the same pool, applies the same bind and
result processors, and returns the connection to the pool (which resets
it, as usual). Pool events, ``pool_pre_ping`` and the pool's reset still
apply, and the server receives the same statements.

Anything unusual falls back to the ``Connection`` path: an engine that
gains a listener or turns on ``echo``, a statement whose SQL needs
per-execution rendering, and any driver or processor error (the pool is
invalidated first if the error says the connection is dead), so that
errors keep SQLAlchemy's types and messages. A failed connect raises
SQLAlchemy's error at once, as ``Connection`` would.
"""

from __future__ import annotations

import logging
import typing as t
import weakref

# Methods of the dialect's execution context that the direct read would
# skip; a context that overrides one of them is not bypassed.
_CONTEXT_METHODS = (
    "create_cursor",
    "create_default_cursor",
    "pre_exec",
    "get_result_processor",
    "handle_dbapi_exception",
)


#: The drivers the direct read is used with, as ``(dialect name, driver)``:
#: those its tests run against (SQLite here, PostgreSQL in ``.ci/run``).
#: Any other keeps SQLAlchemy's ``Connection`` path.
DRIVERS = frozenset(
    {("sqlite", "pysqlite"), ("postgresql", "psycopg2"), ("postgresql", "psycopg")}
)


class Unsupported(Exception):
    """The statement or engine cannot take the direct path."""


class DirectRead:
    """``statement`` compiled for one engine, read with its DBAPI cursor."""

    def __init__(self, statement: t.Any, engine: t.Any, columns: list[t.Any]) -> None:
        from sqlalchemy.engine.default import DefaultDialect
        from sqlalchemy.engine.default import DefaultExecutionContext
        from sqlalchemy.engine.interfaces import BindTyping

        dialect = engine.dialect
        context = dialect.execution_ctx_cls
        if (
            (dialect.name, dialect.driver) not in DRIVERS
            or dialect.is_async
            or dialect.loaded_dbapi is None
            or type(dialect).do_execute is not DefaultDialect.do_execute
            # Drivers that need typed binds (Oracle) or whose execution
            # context makes its own cursor or prepares it (mysqlconnector's
            # buffered cursor, pyodbc, pg8000): their context is not
            # optional. post_exec of the others (psycopg2's notices,
            # MySQL's DELETE ... RETURNING) has nothing to do for a SELECT.
            or dialect.bind_typing is BindTyping.SETINPUTSIZES
            or any(
                getattr(context, name) is not getattr(DefaultExecutionContext, name)
                for name in _CONTEXT_METHODS
            )
            or not hasattr(_connection_class(), "_handle_dbapi_exception_noconnection")
        ):
            raise Unsupported("dialect")
        compiled = statement.compile(dialect=dialect)
        sql = compiled.string
        if "__[POSTCOMPILE" in sql or getattr(compiled, "escaped_bind_names", None):
            raise Unsupported("per-execution rendering")
        self.sql = sql
        self.dialect = dialect
        self.error = dialect.loaded_dbapi.Error
        # Every bind's value (those without one are the lookup's keys, set
        # per request) and its dialect bind processor, in the driver's order.
        binds = compiled.binds
        defaults = compiled.construct_params(
            {name: None for name, bind in binds.items() if bind.required},
            _check=False,
        )
        if compiled.positional:
            order = list(compiled.positiontup or ())
        else:
            order = list(defaults)
        self.positional = compiled.positional
        self.names = order
        self.defaults = [defaults[name] for name in order]
        self.processors = [
            binds[name].type._cached_bind_processor(dialect) for name in order
        ]
        self.sequence = dialect.execute_sequence_format
        self.columns = columns
        self.result_processors: list[t.Any] | None = None

    @staticmethod
    def applies(engine: t.Any) -> bool:
        """Whether a direct read on ``engine`` changes nothing: no event
        listeners on it or its dialect (SQLAlchemy's own flags), no SQL
        logging, no execution options. Checked on every read: a listener
        or ``echo`` may be added at any time."""
        return not (
            getattr(engine, "_has_events", True)
            # A listener on the Connection class (any engine's connections)
            # sets this class attribute (SQLAlchemy 2.0 has none until then).
            or getattr(_connection_class(), "_has_events", False)
            or getattr(engine.dialect, "_has_events", True)
            or engine.echo
            or engine.logger.isEnabledFor(logging.INFO)
            or engine.get_execution_options()
        )

    def parameters(self, params: dict[str, t.Any]) -> t.Any:
        values = []
        for name, default, process in zip(
            self.names, self.defaults, self.processors, strict=True
        ):
            value = params.get(name, default)
            if process is not None:
                value = process(value)
            values.append(value)
        if self.positional:
            return self.sequence(values)
        return dict(zip(self.names, values, strict=True))

    def fetch(self, engine: t.Any, params: dict[str, t.Any]) -> t.Any:
        """The first row (a tuple of processed values), or ``None``.

        :raises Unsupported: a bind or result processor or the driver
            failed; the caller runs the statement again through
            ``Connection``, which raises SQLAlchemy's own error.
        """
        try:
            parameters = self.parameters(params)
        except Exception as e:
            raise Unsupported("a bind processor failed") from e
        try:
            raw = engine.raw_connection()
        except self.error as e:
            # SQLAlchemy's error, as Connection raises it (a disconnect
            # invalidates the pool): asked for once, not again through
            # Connection. Pool errors (TimeoutError) go out as they are.
            _connection_class()._handle_dbapi_exception_noconnection(
                e, self.dialect, engine
            )
            raise
        cursor = None
        try:
            cursor = raw.cursor()
            cursor.execute(self.sql, parameters)
            row = cursor.fetchone()
            description = cursor.description
            cursor.close()
        except BaseException as e:
            if not isinstance(e, Exception):
                # Interrupted (a timeout, an exit): the connection's state
                # is unknown, it must not serve another request.
                raw.invalidate(e)
                raise
            if isinstance(e, self.error) and self.dialect.is_disconnect(
                e, raw.dbapi_connection, cursor
            ):
                # As Connection does: every connection of the pool made
                # before this one is stale too (the server restarted).
                invalidate_pool = getattr(engine.pool, "_invalidate", None)
                if invalidate_pool is not None:
                    invalidate_pool(raw, e)  # also gives this one back
                else:
                    raw.invalidate(e)
            else:
                raw.close()
            raise Unsupported("the driver failed") from e
        raw.close()
        if row is None:
            return None
        try:
            processors = self.result_processors
            if processors is None:
                processors = self.result_processors = [
                    column.type._cached_result_processor(self.dialect, described[1])
                    for column, described in zip(self.columns, description, strict=True)
                ]
            return tuple(
                value if process is None else process(value)
                for value, process in zip(row, processors, strict=True)
            )
        except Exception as e:
            raise Unsupported("a result processor failed") from e


_CONNECTION: t.Any = None


def _connection_class() -> t.Any:
    global _CONNECTION
    if _CONNECTION is None:
        from sqlalchemy.engine import Connection

        _CONNECTION = Connection
    return _CONNECTION


def direct_read(
    reads: weakref.WeakKeyDictionary[t.Any, DirectRead | None],
    statement: t.Any,
    engine: t.Any,
    columns: list[t.Any],
) -> DirectRead | None:
    """The :class:`DirectRead` of ``statement`` on ``engine``, made once and
    kept in ``reads`` (one mapping per statement), or ``None`` when the
    read must go through ``Connection``."""
    if not DirectRead.applies(engine):
        return None
    try:
        return reads[engine]
    except KeyError:
        pass
    try:
        read: DirectRead | None = DirectRead(statement, engine, columns)
    except (Unsupported, AttributeError, NotImplementedError):
        read = None
    reads[engine] = read
    return read
