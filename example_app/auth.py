"""Pick a user: the smallest login that gives each visitor their own rows.

There are no passwords: the point is to show per-user downloads (another
user's document is 404), not authentication. A real app would put
Flask-Login or its own password check in :func:`login`.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import re
import typing as t

import sqlalchemy as sa
from flask import Blueprint
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from werkzeug.wrappers import Response

from .models import db
from .models import User

bp = Blueprint("auth", __name__, url_prefix="/auth")

# Short names with no spaces: they appear in the page header and in file names.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}\Z")

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])


@bp.before_app_request
def load_user() -> None:
    """Put the logged-in :class:`User` (or ``None``) in ``g.user``."""
    user_id = session.get("user_id")
    g.user = db.session.get(User, user_id) if isinstance(user_id, int) else None


def current_user() -> User:
    """The logged-in user; only call it in views behind :func:`login_required`."""
    return t.cast(User, g.user)


def login_required(view: F) -> F:
    """Send visitors who have not picked a user to the login page first."""

    @functools.wraps(view)
    def wrapped(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if g.user is None:
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("auth.login", next=target))
        return view(*args, **kwargs)

    return t.cast(F, wrapped)


# A path on this site, as request.full_path writes it: "/" then no second
# "/" or "\\" ("//evil.example" and "/\\evil.example" name another host), and
# no backslash, whitespace or control character anywhere (browsers delete
# tabs and newlines from URLs, so "/\t/evil.example" is "//evil.example").
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\x00-\x20\x7f-\x9f\\]*\Z")


def _safe_next(target: str | None) -> str:
    # Anything else would send the visitor elsewhere (an open redirect) or
    # fail to go into a Location header (a 500).
    if target and _LOCAL_PATH.match(target):
        return target
    return url_for("documents.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """Log in as an existing user, or create one by typing a new name."""
    users = db.session.scalars(sa.select(User).order_by(User.name)).all()
    if request.method in ("GET", "HEAD"):
        return render_template("login.html", users=users)
    name = request.form.get("name", "").strip()
    if not _NAME.match(name):
        error = "A user name is 1 to 40 letters, digits, '.', '_' or '-'."
        return render_template("login.html", users=users, error=error), 400
    user = db.session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        db.session.add(user)
        db.session.commit()
    # A new session on login: nothing from before carries over.
    session.clear()
    session["user_id"] = user.id
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> Response:
    """Forget the user; their documents are 404 until they log in again."""
    session.clear()
    return redirect(url_for("auth.login"))
