"""Audit 7: the mixin API, file wrappers and views, and ``send_download``
(DESIGN.md sections 1, 2 and 7), read literally, from the outside.

Each test names the DESIGN.md clause it checks; a regression test's
docstring says what was wrong.
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import typing as t
import urllib.parse

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask

from flask_download import ConfigurationError
from flask_download import DownloadFile
from flask_download import DownloadView
from flask_download import FlaskDownload
from flask_download import make_download_blueprint
from flask_download import ObjectDownloadView
from flask_download import send_download
from flask_download import StorageDownloadView

# -- helpers ------------------------------------------------------------------


def raw_get(
    base: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection; the raw status, headers and body."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


class _Chunks(DownloadFile):
    """A custom wrapper (DESIGN §2: users subclass DownloadFile) that
    streams four bytes and says its size is :attr:`size`."""

    name = "custom.txt"

    def chunks(
        self, chunk_size: int = 65536, start: int = 0, stop: int | None = None
    ) -> cabc.Iterator[bytes]:
        yield b"data"


class _Index:
    """An integer-like size (what numpy.int64 is to operator.index)."""

    def __index__(self) -> int:
        return 4


def _sized(size: t.Any) -> type[DownloadFile]:
    return type("Sized", (_Chunks,), {"size": size})


def size_app() -> Flask:
    """Views and function views serving custom wrappers of broken sizes."""
    app = Flask(__name__)
    for name, size in [("minus", -1), ("float", 4.0), ("true", True)]:
        wrapper = _sized(size)

        class View(DownloadView):
            def get_file(self, wrapper: type[DownloadFile] = wrapper) -> DownloadFile:
                return wrapper()

        app.add_url_rule(f"/view/{name}", view_func=View.as_view(f"view_{name}"))
        app.add_url_rule(
            f"/send/{name}",
            f"send_{name}",
            lambda wrapper=wrapper: send_download(wrapper()),
        )

    class Integer(DownloadView):
        def get_file(self) -> DownloadFile:
            return _sized(_Index())()

    app.add_url_rule("/view/index", view_func=Integer.as_view("view_index"))
    return app


# -- §2: a wrapper's size -----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"),
    [("minus", ConfigurationError), ("float", TypeError), ("true", TypeError)],
    ids=["negative", "float", "bool"],
)
@pytest.mark.parametrize("route", ["view", "send"])
def test_a_wrapper_size_that_is_no_byte_count_is_refused_before_sending(
    route: str, kind: str, error: type[Exception]
) -> None:
    """DESIGN §2/§3: ``size`` is a number of bytes or ``None``, and
    ``Content-Length`` is sent when it is known. A custom wrapper's ``-1``
    (a common "unknown" marker), ``4.0`` or ``True`` went out as
    ``Content-Length: -1`` / ``4.0`` / ``True``: now refused, naming the
    wrapper, before any byte is sent."""
    app = size_app()
    app.config["TESTING"] = True
    with pytest.raises(error, match=r"Sized\.size"):
        app.test_client().get(f"/{route}/{kind}")


def test_an_integer_like_wrapper_size_goes_out_as_a_number() -> None:
    """The check keeps integer-likes (``numpy.int64``), sent as digits."""
    with size_app().test_client().get("/view/index") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == "4"
        assert rv.data == b"data"


@pytest.mark.parametrize("route", ["view", "send"])
def test_a_negative_wrapper_size_is_a_clean_500_on_gunicorn(route: str) -> None:
    """On gunicorn, ``Content-Length: -1`` made the worker send the status
    line and headers but not one byte of the body (it stops at the length
    it was told); now the app's 500 is sent whole."""
    with running_gunicorn("tests.test_audit7_views:size_app()") as base:
        status, headers, body = raw_get(base, f"/{route}/minus")
    assert status == 500
    assert headers["Content-Length"] == str(len(body))
    assert b"Internal Server Error" in body


def test_a_negative_wrapper_size_is_a_clean_500_on_werkzeug() -> None:
    with running_werkzeug(size_app()) as base:
        status, headers, body = raw_get(base, "/view/minus")
    assert status == 500
    assert headers["Content-Length"] == str(len(body))


# -- §2: ObjectDownloadView configuration errors -------------------------------


@pytest.fixture
def fsa_model() -> t.Any:
    """A Flask-SQLAlchemy model (``db.Model`` has the class-level ``query``
    property, which needs an app context) and its app."""
    flask_sqlalchemy = pytest.importorskip("flask_sqlalchemy")
    sa = pytest.importorskip("sqlalchemy")
    db = flask_sqlalchemy.SQLAlchemy()

    class Document(db.Model):  # type: ignore[name-defined]
        id = sa.Column(sa.Integer, primary_key=True)
        slug = sa.Column(sa.String, unique=True)
        file = sa.Column(sa.LargeBinary)
        filename = sa.Column(sa.String)

    app = Flask(__name__)
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI="sqlite://")
    db.init_app(app)
    FlaskDownload(app)
    with app.app_context():
        db.create_all()
        db.session.add(Document(id=1, slug="one", file=b"row", filename="r.txt"))
        db.session.commit()
    return app, Document


@pytest.mark.parametrize(
    "attribute", ["file_field", "basename_field", "size_field", "mime_type_field"]
)
def test_a_misnamed_field_of_a_flask_sqlalchemy_model_is_a_configuration_error(
    fsa_model: t.Any, attribute: str
) -> None:
    """DESIGN §2/§1: ``as_view`` fails at configuration time with a clear
    error. For a Flask-SQLAlchemy model, as_view called where views are
    usually made (a blueprint module, at import: no app context) raised
    ``RuntimeError: Working outside of application context`` from
    ``Document.query`` while listing the model's attributes for the message,
    instead of the ConfigurationError naming them."""
    _, document = fsa_model
    with pytest.raises(ConfigurationError) as caught:
        ObjectDownloadView.as_view("doc", model=document, **{attribute: "filenme"})
    message = str(caught.value)
    assert f"ObjectDownloadView.{attribute} is 'filenme'" in message
    assert "Did you mean 'filename'?" in message
    assert "Document maps: id, slug, file, filename." in message


def test_a_misnamed_field_message_is_the_same_inside_an_app_context(
    fsa_model: t.Any,
) -> None:
    app, document = fsa_model
    with app.app_context(), pytest.raises(ConfigurationError) as caught:
        ObjectDownloadView.as_view("doc", model=document, file_field="nope")
    assert "Document maps: id, slug, file, filename." in str(caught.value)


def test_a_slug_url_with_slug_field_none_says_what_to_set(fsa_model: t.Any) -> None:
    """A view with ``slug_field=None`` under a ``<slug>`` rule failed with
    ``TypeError: attribute name must be string``; now a ConfigurationError
    says which attribute to set. With the primary key only, it serves."""
    app, document = fsa_model
    app.add_url_rule(
        "/by-slug/<slug>",
        view_func=ObjectDownloadView.as_view(
            "by_slug", model=document, slug_field=None
        ),
    )
    app.add_url_rule(
        "/by-id/<int:id>",
        view_func=ObjectDownloadView.as_view("by_id", model=document, slug_field=None),
    )
    with pytest.raises(ConfigurationError, match=r"slug_field is None.*'<slug>'"):
        app.test_client().get("/by-slug/one")
    with app.test_client().get("/by-id/1") as rv:
        assert rv.status_code == 200
        assert rv.data == b"row"


def test_an_unknown_slug_field_is_not_suggested_to_be_none(fsa_model: t.Any) -> None:
    """The message for a misnamed ``slug_field`` no longer offers ``None``
    (which cannot look a URL's slug up)."""
    app, document = fsa_model
    app.add_url_rule(
        "/s/<slug>",
        view_func=ObjectDownloadView.as_view("s", model=document, slug_field="slg"),
    )
    with pytest.raises(ConfigurationError) as caught:
        app.test_client().get("/s/one")
    message = str(caught.value)
    assert "Did you mean 'slug'?" in message
    assert "or None" not in message


# -- §2: an empty storage or root is a configuration error when made -----------


@pytest.mark.parametrize(
    "make",
    [
        lambda: StorageDownloadView.as_view("s", storage=""),
        lambda: StorageDownloadView.as_view("s", storage="", path="a.txt"),
        lambda: ObjectDownloadView.as_view("o", storage=""),
        lambda: make_download_blueprint("b", storage=""),
    ],
    ids=["storage-url-path", "storage-fixed-path", "object-view", "blueprint"],
)
def test_an_empty_storage_url_fails_when_the_view_is_made(
    make: cabc.Callable[[], t.Any],
) -> None:
    """DESIGN §2 (``storage``: a filesystem or a URL) and §1 (errors at
    configuration time): ``storage=""`` (an unset environment variable) was
    taken by ``as_view`` and made every request a 500 ("The storage URL is
    empty"), while an empty ``root`` was already refused when the view is
    made."""
    pytest.importorskip("fsspec")
    with pytest.raises(ConfigurationError, match="storage URL is empty"):
        make()


@pytest.mark.parametrize("options", [{"root": ""}, {"storage": ""}], ids=str)
def test_an_empty_file_column_root_or_storage_fails_when_declared(
    options: dict[str, str],
) -> None:
    """``FileColumn(root="")`` was taken and failed on every read; it is
    refused when the column is declared, as a view's ``root=""`` is."""
    pytest.importorskip("sqlalchemy")
    from flask_download.sqlalchemy import FileColumn

    with pytest.raises(ConfigurationError, match="empty"):
        FileColumn(**options)
