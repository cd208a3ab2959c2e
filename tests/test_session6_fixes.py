"""Smaller fixes of the sixth session, each pinned by a test that fails
without it."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_download import ConfigurationError
from flask_download import FlaskDownload


@pytest.mark.parametrize("value", ["123456789012345678901234567890123456", "1e40"])
def test_an_all_digit_nginx_secret_from_the_environment_says_to_quote_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # from_prefixed_env() reads the variable as JSON: a number. The message
    # said "at least 32 characters" of a 36-digit secret.
    monkeypatch.setenv("FLASK_DOWNLOAD_NGINX_SECURE_LINK_SECRET", value)
    app = Flask("session6_secret")
    app.config.from_prefixed_env()
    with pytest.raises(ConfigurationError, match="read as the number") as info:
        FlaskDownload(app)
    assert "quote it as JSON" in str(info.value)


def test_a_quoted_all_digit_secret_is_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    digits = "123456789012345678901234567890123456"
    monkeypatch.setenv("FLASK_DOWNLOAD_NGINX_SECURE_LINK_SECRET", f'"{digits}"')
    app = Flask("session6_secret_ok")
    app.config.from_prefixed_env()
    FlaskDownload(app)
    assert app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] == digits


@pytest.mark.parametrize(
    "hosts",
    [["a.example,b.example"], ["a.example b.example"], ["exa$mple.com"]],
)
def test_an_http_file_refuses_host_entries_that_never_match(hosts: list[str]) -> None:
    pytest.importorskip("urllib3")
    from flask_download import HTTPFile

    with pytest.raises(ConfigurationError, match="allowed_hosts"):
        HTTPFile("http://a.example/f.txt", allowed_hosts=hosts)


def test_an_http_file_takes_plain_host_entries() -> None:
    pytest.importorskip("urllib3")
    from conftest import free_port

    from flask_download import HTTPFile
    from flask_download import UpstreamError

    # Accepted: the fetch is tried (nothing listens there: a 502).
    with pytest.raises(UpstreamError):
        HTTPFile(
            f"http://127.0.0.1:{free_port()}/f.txt",
            allowed_hosts=[
                "127.0.0.1",
                ".example.org",
                "::1",
                "[::1]",
                "bücher.example",
            ],
        )
