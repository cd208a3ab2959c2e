"""A ready-made download blueprint for app factories."""

from __future__ import annotations

import collections.abc as cabc
import os
import typing as t
import uuid

from flask import Blueprint
from werkzeug.routing import Map
from werkzeug.routing import Rule

from ._compat import require
from .exceptions import ConfigurationError
from .objects import ObjectDownloadView
from .response import no_less_private
from .views import DownloadView
from .views import PathDownloadView

if t.TYPE_CHECKING:
    from flask.typing import RouteCallable

#: Endpoint (inside the blueprint) of the directory route, URL variable ``path``.
FILE_ENDPOINT = "file"
#: Endpoint of the model route by primary key, URL variable ``id``.
OBJECT_ENDPOINT = "object"
#: Endpoint of the model route by slug, URL variable ``slug``.
OBJECT_BY_SLUG_ENDPOINT = "object_by_slug"


def make_download_blueprint(
    name: str,
    import_name: str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    storage: t.Any = None,
    model: type[t.Any] | None = None,
    url_prefix: str | None = None,
    files: bool | None = None,
    files_rule: str | None = None,
    model_rule: str | None = None,
    slug: bool | None = None,
    options: cabc.Mapping[str, t.Any] | None = None,
    file_options: cabc.Mapping[str, t.Any] | None = None,
    object_options: cabc.Mapping[str, t.Any] | None = None,
    file_view: type[DownloadView] | None = None,
    object_view: type[ObjectDownloadView] = ObjectDownloadView,
    decorators: cabc.Sequence[cabc.Callable[[RouteCallable], RouteCallable]] = (),
    **blueprint_options: t.Any,
) -> Blueprint:
    """Build a blueprint serving a directory (or storage) and/or a model's files.

    Register it in your app factory::

        from flask_download import make_download_blueprint

        def create_app():
            app = Flask(__name__)
            db.init_app(app)
            app.register_blueprint(
                make_download_blueprint(
                    "downloads", root="uploads", model=Document, url_prefix="/dl"
                )
            )
            return app

    It makes these routes (endpoints are prefixed with ``name``, so
    ``url_for("downloads.file", path="a/b.pdf")``):

    - ``<name>.file``: ``files_rule``, a ``PathDownloadView`` (a
      ``StorageDownloadView`` with ``storage``). By default
      ``/<path:path>``, or ``/files/<path:path>`` when the model routes are
      made too;
    - ``<name>.object``: ``<model_rule>/<int:id>``, an ``ObjectDownloadView``;
    - ``<name>.object_by_slug``: ``<model_rule>/by-slug/<slug>``, the same.

    Rules are under ``url_prefix``.

    The directory route is made when ``files`` is true; by default when
    ``root`` or ``storage`` is given or there is no ``model`` (it then
    serves ``DOWNLOAD_ROOT``). Paths never leave the root. The model
    routes are made when ``model`` is given; the id converter follows the
    primary key (``int``, ``uuid``, else ``string``), and the slug route is
    made when the model has the view's ``slug_field`` (``slug``).

    The routes never overlap, so ``url_for`` of one view never builds a URL
    that another view answers: a directory route that could match a model
    URL (``files_rule="/<path:path>"`` next to ``/report/<int:id>``) is a
    :exc:`~flask_download.ConfigurationError`.

    :param name: the blueprint name, prefix of its endpoints.
    :param import_name: the blueprint's import name (default: this module).
    :param root: directory of the files; also the root of the model's
        string paths. ``None`` uses ``DOWNLOAD_ROOT``. Never client input.
    :param storage: an fsspec filesystem or URL serving the files instead
        of ``root`` (and holding the model's keys).
    :param model: a mapped class whose rows are served by id and slug.
    :param url_prefix: where the blueprint is mounted (``register_blueprint``
        may override it).
    :param files: whether to make the directory route (see above).
    :param files_rule: the directory route's rule (see above). It must have
        the view's ``path_url_kwarg`` variable (``path``; the variable of a
        rule with only one, such as ``/<path:name>``, becomes the view's
        ``path_url_kwarg`` when the options do not set it).
    :param model_rule: prefix of the model routes; default
        ``/<model.__tablename__>``.
    :param slug: whether to make the slug route (default: if the model has
        the slug attribute).
    :param options: view attributes for every view, as ``as_view`` takes
        them (``{"attachment": False, "cache_max_age": 3600}``).
    :param file_options: view attributes for the directory view only.
    :param object_options: view attributes for the model views only
        (``{"basename_field": "filename"}``).
    :param file_view: the directory view class (a subclass of
        ``PathDownloadView`` or ``StorageDownloadView``).
    :param object_view: the model view class, such as a subclass whose
        ``get_query`` keeps the current user's rows. The default serves
        every row of ``model`` to whoever asks for its id: give one that
        narrows the rows (and ``decorators``) unless they are all public.
    :param decorators: applied to every view function, innermost first
        (``[login_required]``). The files then answer ``Cache-Control:
        private`` (``private, max-age=N`` with ``cache_max_age``), as the
        model's rows always do, unless ``cache_control`` is given: behind an
        access check a file may be one user's, and no shared cache may keep
        it for the next.
    :param blueprint_options: other :class:`~flask.Blueprint` arguments
        (``subdomain``, ``url_defaults``...).
    :raises TypeError: an option names no attribute of its view.
    :raises ConfigurationError: ``root`` and ``storage`` together, nothing
        to serve, a ``files_rule`` without the path variable, routes that
        overlap, or a local ``storage`` without an absolute folder
        (``LocalFileSystem()``, ``"file://"``, ``"file:///"``: give
        ``"file:///srv/files"``).
    """
    if root is not None and storage is not None:
        raise ConfigurationError(
            "make_download_blueprint() takes a root or a storage, not both."
        )
    if storage is not None:
        # URL paths and the model's keys: never confined to the working
        # directory ("file://", LocalFileSystem()) nor to "/" (model-only
        # blueprints too, whose view does not check it when made).
        from .storage._keys import check_storage_folder

        check_storage_folder(storage, "make_download_blueprint()")
    if files is None:
        files = root is not None or storage is not None or model is None
    if not files and model is None:
        raise ConfigurationError(
            "make_download_blueprint() has nothing to serve: pass a model,"
            " or files=True (with a root, a storage or DOWNLOAD_ROOT)."
        )
    bp = Blueprint(
        name, import_name or __name__, url_prefix=url_prefix, **blueprint_options
    )
    common = dict(options or {})
    made_files_rule: str | None = None

    def add(rule: str, endpoint: str, view: RouteCallable) -> None:
        for decorator in decorators:
            view = decorator(view)
        bp.add_url_rule(rule, endpoint=endpoint, view_func=view)

    if files:
        attrs = {**common, **(file_options or {})}
        if storage is not None:
            from .storage import StorageDownloadView

            view_class: type[DownloadView] = file_view or StorageDownloadView
            attrs.setdefault("storage", storage)
        else:
            view_class = file_view or PathDownloadView
            if root is not None:
                attrs.setdefault("root", root)
        path_kwarg = attrs.get(
            "path_url_kwarg", getattr(view_class, "path_url_kwarg", "path")
        )
        made_files_rule = files_rule
        if made_files_rule is None:
            # Next to the model routes, a catch-all "/<path:path>" would
            # build URLs such as "/report/1" that the model route answers.
            made_files_rule = f"/<path:{path_kwarg}>"
            if model is not None:
                made_files_rule = "/files" + made_files_rule
        variable = _files_rule_variable(
            made_files_rule, path_kwarg, "path_url_kwarg" in attrs
        )
        if variable != path_kwarg:
            attrs["path_url_kwarg"] = variable
        if decorators and attrs.get("cache_control") is None:
            # Behind an access check the files may be one user's: no shared
            # cache may keep them (as ObjectDownloadView's rows).
            view_class = _private_cache(view_class)
        view = view_class.as_view(FILE_ENDPOINT, **attrs)
        add(made_files_rule, FILE_ENDPOINT, view)

    if model is not None:
        attrs = {**common, **(object_options or {})}
        attrs.setdefault("model", model)
        if root is not None:
            attrs.setdefault("root", root)
        if storage is not None:
            attrs.setdefault("storage", storage)
        prefix = model_rule
        if prefix is None:
            prefix = "/" + str(getattr(model, "__tablename__", model.__name__.lower()))
        prefix = prefix.rstrip("/")
        slug_field = attrs.get("slug_field", object_view.slug_field)
        if slug is None:
            slug = hasattr(model, slug_field)
        if made_files_rule is not None and _overlap(made_files_rule, prefix, slug):
            raise ConfigurationError(
                "make_download_blueprint(): the file route"
                f" {made_files_rule!r} overlaps"
                f" the model routes under {prefix or '/'!r}, so url_for() of one"
                " would build URLs the other answers. Give them static prefixes"
                " that neither shares nor nests in the other's, such as"
                " files_rule='/files/<path:path>' with model_rule='/rows'."
            )
        pk_name = attrs.get("pk_url_kwarg", object_view.pk_url_kwarg)
        add(
            f"{prefix}/<{_pk_converter(model)}:{pk_name}>",
            OBJECT_ENDPOINT,
            object_view.as_view(OBJECT_ENDPOINT, **attrs),
        )
        if slug:
            slug_name = attrs.get("slug_url_kwarg", object_view.slug_url_kwarg)
            add(
                f"{prefix}/by-slug/<{slug_name}>",
                OBJECT_BY_SLUG_ENDPOINT,
                object_view.as_view(OBJECT_BY_SLUG_ENDPOINT, **attrs),
            )
    return bp


_PRIVATE = frozenset(("private",))


def _private_cache(view_class: type[DownloadView]) -> type[DownloadView]:
    """``view_class`` answering ``Cache-Control: private`` (its own value,
    such as ``max-age=N`` from ``DOWNLOAD_CACHE_MAX_AGE``, kept after it)
    unless a ``cache_control`` is set."""

    def get_cache_control(self: DownloadView) -> str:
        value: str = view_class.get_cache_control(self)
        if self.cache_control is not None or "private" in value.lower():
            return value
        # A "public" it may say is dropped: the decorators check who asks.
        return t.cast(str, no_less_private(value, _PRIVATE))

    return type(
        view_class.__name__,
        (view_class,),
        {
            "get_cache_control": get_cache_control,
            "__module__": view_class.__module__,
            "__qualname__": view_class.__qualname__,
            "__doc__": view_class.__doc__,
        },
    )


def _files_rule_variable(rule: str, name: str, explicit: bool) -> str:
    """The URL variable of ``rule`` holding the file path: ``name``, or the
    rule's only variable when ``name`` was not given explicitly."""
    parsed = Rule(rule, endpoint=FILE_ENDPOINT)
    try:
        Map([parsed])  # parses the rule: its variables are known after
    except ValueError as e:
        raise ConfigurationError(f"Invalid files_rule {rule!r}: {e}") from None
    variables = parsed.arguments
    if name in variables:
        return name
    if not explicit and len(variables) == 1:
        return next(iter(variables))
    raise ConfigurationError(
        f"files_rule {rule!r} has no '<path:{name}>' variable for the file"
        f" view's path_url_kwarg {name!r}: write files_rule='/<path:{name}>', or"
        " set path_url_kwarg (in file_options) to the rule's variable."
    )


def _segments(rule: str) -> tuple[list[str], bool]:
    """The static segments ``rule`` starts with, and whether it has variables."""
    static: list[str] = []
    for segment in rule.strip("/").split("/") if rule.strip("/") else []:
        if "<" in segment:
            return static, True
        static.append(segment)
    return static, False


def _overlap(files_rule: str, model_prefix: str, slug: bool) -> bool:
    """Whether a URL could match both ``files_rule`` and a model route
    (``<model_prefix>/<id>``, ``<model_prefix>/by-slug/<slug>``)."""
    files, _ = _segments(files_rule)
    model, model_variables = _segments(model_prefix)
    common = min(len(files), len(model))
    if files[:common] != model[:common]:
        return False  # a static segment tells them apart
    if model_variables or len(files) <= len(model):
        return True  # the file path can take any of the model's segments
    # The file route has a static segment past the model prefix, then at
    # least one more: longer than the id route (one segment after the
    # prefix), and as long as the slug route only if that segment is "by-slug".
    return slug and len(files) == len(model) + 1 and files[-1] == "by-slug"


def _pk_converter(model: type[t.Any]) -> str:
    """The URL converter matching the model's primary key type."""
    sa = require("sqlalchemy", "sqlalchemy", "Model downloads")

    columns = sa.inspect(model).primary_key
    try:
        python_type = columns[0].type.python_type if len(columns) == 1 else None
    except NotImplementedError:
        python_type = None
    if python_type is int:
        return "int"
    if python_type is uuid.UUID:
        return "uuid"
    return "string"
