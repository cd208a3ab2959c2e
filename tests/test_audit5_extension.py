"""Audit 5: the extension (config keys, arguments) and the first five minutes
(README and docs commands as written, README links)."""

from __future__ import annotations

import pathlib
import re
import sys

import pytest
from flask import Flask

from flask_download import ConfigurationError
from flask_download import DEFAULTS
from flask_download import FlaskDownload
from flask_download import VirtualDownloadView

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = pathlib.Path(__file__).resolve().parent.parent


def _app(tmp_path: pathlib.Path, **config: object) -> Flask:
    app = Flask(__name__, root_path=str(tmp_path))
    app.config.update(TESTING=True, **config)
    return app


# -- config keys that look meant for Flask-Download ---------------------------


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("DOWNLOAD_MAX_RANGE", "DOWNLOAD_MAX_RANGES"),
        ("DOWNLOAD_CACHE_MAXAGE", "DOWNLOAD_CACHE_MAX_AGE"),
        ("DOWNLOAD_CHUNKSIZE", "DOWNLOAD_CHUNK_SIZE"),
        ("DOWNLOADS_ROOT", "DOWNLOAD_ROOT"),
        ("DOWNLOAD_ROOTS", "DOWNLOAD_ROOT"),
        ("DOWNLOAD_ACCEL_RULE", "DOWNLOAD_ACCEL_RULES"),
        ("DOWNLOAD_HTTP_ALLOWED_HOST", "DOWNLOAD_HTTP_ALLOWED_HOSTS"),
        ("DOWNLOAD_ALLOWED_HOSTS", "DOWNLOAD_HTTP_ALLOWED_HOSTS"),
        ("DOWNLOAD_SIGNED_MAXAGE", "DOWNLOAD_SIGNED_MAX_AGE"),
        ("DOWNLOAD_HTTP_TIMEOUTS", "DOWNLOAD_HTTP_TIMEOUT"),
    ],
)
def test_misspelt_config_key_fails_at_init_app_naming_the_setting(
    tmp_path: pathlib.Path, key: str, meant: str
) -> None:
    # It was ignored without a word: DOWNLOAD_MAX_RANGE = 5 left the
    # default of 50 ranges in force.
    app = _app(tmp_path, **{key: 5})
    with pytest.raises(ConfigurationError) as info:
        FlaskDownload(app)
    message = str(info.value)
    assert repr(key) in message
    assert f"did you mean {meant!r}" in message
    assert "download" not in app.extensions


def test_lower_case_setting_is_refused_with_its_spelling(
    tmp_path: pathlib.Path,
) -> None:
    app = _app(tmp_path, download_max_ranges=2)
    with pytest.raises(ConfigurationError, match="write 'DOWNLOAD_MAX_RANGES'"):
        FlaskDownload(app)


@pytest.mark.parametrize(
    ("key", "group"),
    [
        ("DOWNLOAD_HTTP_PROXY", "DOWNLOAD_HTTP_ALLOWED_HOSTS, DOWNLOAD_HTTP_TIMEOUT"),
        ("DOWNLOAD_NGINX_SECRET", "DOWNLOAD_NGINX_SECURE_LINK_SECRET"),
    ],
)
def test_unknown_key_under_a_settings_prefix_is_warned_about(
    tmp_path: pathlib.Path, key: str, group: str
) -> None:
    # Maybe the application's own key: a warning naming the group's
    # settings, not an error the application cannot opt out of.
    app = _app(tmp_path, **{key: "value"})
    with pytest.warns(UserWarning) as record:
        FlaskDownload(app)
    (warning,) = record
    message = str(warning.message)
    assert repr(key) in message
    assert group in message
    # It points at the application's own line, not at this library.
    assert warning.filename == __file__
    assert "download" in app.extensions


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("DOWNLOAD_MAX_AGE", "'DOWNLOAD_CACHE_MAX_AGE' or 'DOWNLOAD_SIGNED_MAX_AGE'"),
        ("DOWNLOAD_CACHE_MAXAGE", "'DOWNLOAD_CACHE_MAX_AGE'"),
    ],
)
def test_a_key_ending_like_a_setting_names_that_setting(
    tmp_path: pathlib.Path, key: str, meant: str
) -> None:
    app = _app(tmp_path, **{key: 60})
    with pytest.raises(ConfigurationError, match=f"did you mean {meant}"):
        FlaskDownload(app)


@pytest.mark.parametrize(
    "key",
    [
        "DOWNLOAD_FOLDER",
        "DOWNLOAD_DIRECTORY",
        "DOWNLOAD_URL",
        "DOWNLOAD_TEST_POSTGRES",
        "DOWNLOAD_TIMEOUT",
        "DOWNLOAD_DIR",
        "DOWNLOAD_PATH",
    ],
)
def test_the_applications_own_download_keys_pass(
    tmp_path: pathlib.Path, key: str
) -> None:
    # Flask tutorials name an app's own folder DOWNLOAD_FOLDER; and
    # from_prefixed_env() turns FLASK_DOWNLOAD_TEST_POSTGRES (set by .ci/run)
    # into DOWNLOAD_TEST_POSTGRES.
    app = _app(tmp_path, **{key: "value"})
    FlaskDownload(app)
    assert app.extensions["download"].settings(app).max_ranges == 50


def test_from_prefixed_env_with_other_flask_download_variables(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The variables .ci/run exports for the test suite.
    monkeypatch.setenv("FLASK_DOWNLOAD_S3_ENDPOINT", "http://127.0.0.1:8333")
    monkeypatch.setenv("FLASK_DOWNLOAD_S3_ACCESS_KEY", "flask-download")
    monkeypatch.setenv("FLASK_DOWNLOAD_S3_SECRET_KEY", "ci-0123")
    monkeypatch.setenv("FLASK_DOWNLOAD_TEST_POSTGRES", "postgresql://postgres@/t")
    monkeypatch.setenv("FLASK_DOWNLOAD_MAX_RANGES", "3")
    app = _app(tmp_path)
    app.config.from_prefixed_env()
    FlaskDownload(app)
    assert app.extensions["download"].settings(app).max_ranges == 3


def test_views_without_the_extension_are_not_checked(tmp_path: pathlib.Path) -> None:
    # The check is the extension's, at start-up; a view never fails a
    # request over a key it does not read.
    app = _app(tmp_path, DOWNLOAD_MAX_RANGE=5)
    app.add_url_rule(
        "/v", view_func=VirtualDownloadView.as_view("v", content="x", basename="v")
    )
    assert app.test_client().get("/v").data == b"x"


def test_every_setting_passes(tmp_path: pathlib.Path) -> None:
    app = _app(tmp_path, **DEFAULTS)
    FlaskDownload(app)
    assert app.extensions["download"].settings(app).max_ranges == 50


# -- FlaskDownload arguments --------------------------------------------------


def test_generator_arguments_apply_to_every_app(tmp_path: pathlib.Path) -> None:
    # The arguments were validated by iterating them in __init__, then put
    # into app.config: a generator was empty by then, so every app got no
    # offload rule and no allowed host, without a word.
    (tmp_path / "files").mkdir()
    download = FlaskDownload(
        accel="nginx",
        accel_rules=(
            rule
            for rule in [
                {"source_dir": str(tmp_path / "files"), "destination_url": "/p/"}
            ]
        ),
        http_allowed_hosts=(host for host in ["cdn.example.com"]),
    )
    for name in ("first", "second"):
        app = Flask(name, root_path=str(tmp_path))
        download.init_app(app)
        settings = download.settings(app)
        assert settings.http_allowed_hosts == ("cdn.example.com",), name
        assert [rule.destination_url for rule in settings.accel_rules] == ["/p/"]


# -- the first five minutes ---------------------------------------------------

_SHELL_FENCE = re.compile(r"^```(?:sh|bash|shell|console)\n(.*?)^```", re.M | re.S)
_SHELL_BLOCK = re.compile(
    r"^\.\. code-block:: (?:sh|bash|shell|console)\n\n((?:[ \t]+.*\n|\n)+)", re.M
)
# "<repository URL>" in a shell is a redirection from a file of that name.
_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>")


def _shell_blocks(page: pathlib.Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    pattern = _SHELL_FENCE if page.suffix == ".md" else _SHELL_BLOCK
    return pattern.findall(text)


@pytest.mark.parametrize(
    "page",
    [REPO / "README.md", *sorted((REPO / "docs").glob("*.rst"))],
    ids=lambda page: page.name,
)
def test_shell_commands_have_no_placeholder(page: pathlib.Path) -> None:
    for block in _shell_blocks(page):
        assert not _PLACEHOLDER.search(block), f"{page.name}: {block}"


def _sdist_has(relative: str, includes: list[str]) -> bool:
    # flit always ships the package, pyproject.toml, the readme and the
    # license; [tool.flit.sdist] include adds the rest.
    first = relative.split("/", 1)[0]
    if first in ("flask_download", "pyproject.toml", "README.md", "LICENSE"):
        return True
    return any(
        relative == include.rstrip("/")
        or (include.endswith("/") and relative.startswith(include))
        for include in includes
    )


def test_readme_links_resolve_in_the_repository_and_the_sdist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    targets += re.findall(r"^\[[^\]]+\]:\s*(\S+)", readme, re.M)
    relative = [
        target.split("#", 1)[0]
        for target in targets
        if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")
    ]
    assert relative, "README.md links to no file of the repository"
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    includes = config["tool"]["flit"]["sdist"]["include"]
    for target in relative:
        assert (REPO / target).exists(), target
        # README.md is the sdist's own front page: its links must work there.
        assert _sdist_has(target, includes), f"{target} is not in the sdist"
