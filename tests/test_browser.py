"""The example app in a real browser: headless Chromium driven by Selenium.

The app runs on Werkzeug's threaded server; each browser has a fresh
profile and saves downloads into its own temporary directory. Skipped only
when the Chromium or chromedriver binary is missing (CI installs both).
"""

from __future__ import annotations

import collections.abc as cabc
import os
import pathlib
import shutil
import time
import typing as t
import zipfile

import pytest
from conftest import running_werkzeug
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.ui import WebDriverWait

from example_app import create_app
from example_app.models import db

if t.TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds to wait for a page change or a download.
WAIT = 15


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _binary("chromium", "chromium-browser")
CHROMEDRIVER = _binary("chromedriver")


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> cabc.Iterator[Flask]:
    tmp = tmp_path_factory.mktemp("browser_app")
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'example.sqlite'}",
            "DOWNLOAD_ROOT": os.fspath(tmp / "files"),
            "EXAMPLE_LARGE_FILE_SIZE": 3 * 1024 * 1024 + 5,
        }
    )
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def base_url(example: Flask) -> cabc.Iterator[str]:
    with running_werkzeug(example) as url:
        yield url


class Browser:
    """A headless Chromium with a fresh profile and its own download folder."""

    def __init__(self, base_url: str, tmp: pathlib.Path) -> None:
        self.base_url = base_url
        self.downloads = tmp / "downloads"
        self.downloads.mkdir(parents=True)
        options = webdriver.ChromeOptions()
        options.binary_location = t.cast(str, CHROMIUM)
        for flag in CHROME_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp / 'profile'}")
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": os.fspath(self.downloads),
                "download.prompt_for_download": False,
                "safebrowsing.enabled": False,
            },
        )
        self.driver: WebDriver = webdriver.Chrome(
            service=Service(executable_path=CHROMEDRIVER), options=options
        )
        self.use_downloads(self.downloads)

    def use_downloads(self, folder: pathlib.Path) -> None:
        """Save downloads into ``folder`` from now on."""
        folder.mkdir(parents=True, exist_ok=True)
        self.downloads = folder
        # Headless Chromium saves downloads only when told where.
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": os.fspath(folder)},
        )

    def quit(self) -> None:
        self.driver.quit()

    def get(self, path: str) -> None:
        self.driver.get(path if "://" in path else self.base_url + path)

    def find(self, css: str) -> t.Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def submit(self, css: str) -> None:
        """Click a submit button and wait for the next page."""
        old = self.find("html")
        self.find(css).click()
        WebDriverWait(self.driver, WAIT).until(lambda _: _stale(old))

    def login(self, name: str) -> None:
        self.get("/auth/login")
        self.find("#name").send_keys(name)
        self.submit("#name + button")
        assert self.find("#user").text == name

    def upload(self, *paths: pathlib.Path) -> None:
        self.get("/")
        self.find("#file").send_keys("\n".join(os.fspath(p) for p in paths))
        self.submit("form.upload button")

    def document_url(self, filename: str) -> str:
        """The detail page of the user's document called ``filename``."""
        self.get("/")
        for link in self.driver.find_elements(By.CSS_SELECTOR, "a.name"):
            if link.text == filename:
                return t.cast(str, link.get_attribute("href"))
        raise AssertionError(f"{filename!r} is not listed")

    def wait_for_download(self, name: str) -> pathlib.Path:
        """The saved file, once Chromium finished writing it."""
        path = self.downloads / name
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            names = {p.name for p in self.downloads.iterdir()}
            if name in names and not any(n.endswith(".crdownload") for n in names):
                return path
            time.sleep(0.05)
        raise AssertionError(f"{name!r} not downloaded: {sorted(names)}")

    def status(self, path: str) -> int:
        """The status this browser (with its cookies) gets for ``path``.

        Call it on a page of the app. ``fetch`` hides the status of a
        redirect: any redirect is reported as 302.
        """
        return t.cast(
            int,
            self.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "fetch(arguments[0], {redirect: 'manual'}).then("
                "  r => done(r.type === 'opaqueredirect' ? 302 : r.status),"
                "  () => done(-1));",
                path,
            ),
        )


def _stale(element: t.Any) -> bool:
    try:
        element.tag_name  # noqa: B018 - raises once the page changed
    except Exception:
        return True
    return False


def _need_binaries() -> None:
    if CHROMIUM is None:
        pytest.skip("chromium not found: install the distribution's chromium")
    if CHROMEDRIVER is None:
        pytest.skip("chromedriver not found: install chromium-driver")


@pytest.fixture(scope="module")
def shared_browser(
    base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> cabc.Iterator[Browser]:
    _need_binaries()
    browser = Browser(base_url, tmp_path_factory.mktemp("browser"))
    yield browser
    browser.quit()


@pytest.fixture
def browser(shared_browser: Browser, tmp_path: pathlib.Path) -> Browser:
    """One browser for the module (starting one takes seconds), with no
    cookies and an empty download folder for each test."""
    shared_browser.use_downloads(tmp_path / "downloads")
    shared_browser.get("/auth/login")
    shared_browser.driver.delete_all_cookies()
    return shared_browser


@pytest.fixture
def browser_factory(
    base_url: str, tmp_path: pathlib.Path
) -> cabc.Iterator[cabc.Callable[[], Browser]]:
    """Start browsers with a fresh profile each (a fresh session)."""
    _need_binaries()
    browsers: list[Browser] = []

    def factory() -> Browser:
        browser = Browser(base_url, tmp_path / f"browser{len(browsers)}")
        browsers.append(browser)
        return browser

    yield factory
    for browser in browsers:
        browser.quit()


@pytest.fixture
def files(tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "to-upload"
    folder.mkdir()
    return folder


def test_upload_and_download_a_non_ascii_name(
    browser: Browser, files: pathlib.Path
) -> None:
    name = "Résumé – été 2026.txt"
    content = "Bonjour, été ☀\n".encode() * 100
    (files / name).write_bytes(content)
    browser.login("browser-upload")
    browser.upload(files / name)
    assert "Uploaded Résumé – été 2026.txt." in browser.find(".flash").text
    browser.get(browser.document_url(name))
    browser.find("a.download").click()
    assert browser.wait_for_download(name).read_bytes() == content


def test_shared_link_opens_in_a_fresh_session(
    browser: Browser,
    browser_factory: cabc.Callable[[], Browser],
    files: pathlib.Path,
) -> None:
    owner = browser
    (files / "plan.txt").write_bytes(b"the shared plan\n")
    owner.login("browser-share")
    owner.upload(files / "plan.txt")
    owner.get(owner.document_url("plan.txt"))
    Select(owner.find("#expires")).select_by_visible_text("5 minutes")
    owner.submit("form[action$='/share'] button")
    assert "valid for 5 minutes" in owner.find("main").text
    link = owner.find("#share-url").get_attribute("value")

    visitor = browser_factory()
    visitor.get("/auth/login")
    assert visitor.status("/") == 302  # not logged in: sent to the login page
    visitor.get(link)
    assert visitor.wait_for_download("plan.txt").read_bytes() == b"the shared plan\n"
    assert visitor.status(link.replace("signature=", "signature=x")) == 403


def test_zip_of_two_documents(browser: Browser, files: pathlib.Path) -> None:
    (files / "first.txt").write_bytes(b"first")
    (files / "second ½.csv").write_bytes(b"a,b\n1,2\n")
    (files / "left out.txt").write_bytes(b"not selected")
    browser.login("browser-zip")
    browser.upload(files / "first.txt", files / "second ½.csv", files / "left out.txt")
    browser.get("/")
    for box in browser.driver.find_elements(By.CSS_SELECTOR, "input[name=id]"):
        if box.get_attribute("aria-label") != "Select left out.txt":
            box.click()
    browser.find("#archive button[type=submit]").click()
    with zipfile.ZipFile(browser.wait_for_download("documents.zip")) as archive:
        assert sorted(archive.namelist()) == ["first.txt", "second ½.csv"]
        assert archive.read("first.txt") == b"first"
        assert archive.read("second ½.csv") == b"a,b\n1,2\n"


def test_other_users_document_is_404(
    browser: Browser,
    browser_factory: cabc.Callable[[], Browser],
    files: pathlib.Path,
) -> None:
    (files / "mine.txt").write_bytes(b"only mine")
    owner = browser
    owner.login("browser-owner")
    owner.upload(files / "mine.txt")
    page = owner.document_url("mine.txt")
    download = owner.find("a.download").get_attribute("href")
    assert owner.status(download) == 200

    other = browser_factory()
    other.login("browser-other")
    for url in (page, download, download.replace("/download", "/preview")):
        assert other.status(url) == 404
    other.get(download)
    assert "Not Found" in other.find("h1").text
    assert list(other.downloads.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "page.html",
            "<!doctype html><title>inert</title><p>Hello</p>"
            "<script>document.title = 'script ran';</script>"
            "<img src=x onerror=\"document.title = 'handler ran'\">",
        ),
        (
            "drawing.svg",
            '<svg xmlns="http://www.w3.org/2000/svg"><title>inert</title>'
            '<circle r="5"/><script>document.title = "script ran";</script></svg>',
        ),
    ],
    ids=["html", "svg"],
)
def test_active_upload_shown_inline_runs_no_script(
    browser: Browser, files: pathlib.Path, name: str, content: str
) -> None:
    (files / name).write_text(content)
    browser.login("browser-preview")
    browser.upload(files / name)
    browser.get(browser.document_url(name))
    browser.find("a.preview").click()
    # Scripts and the image's error handler run before the load completes.
    WebDriverWait(browser.driver, WAIT).until(
        lambda driver: (
            driver.current_url.endswith("/preview")
            and driver.execute_script("return document.readyState") == "complete"
        )
    )
    assert browser.driver.title == "inert"
    assert list(browser.downloads.iterdir()) == []


def test_wire_panel_shows_206_304_and_416(browser: Browser) -> None:
    browser.login("browser-wire")
    browser.get("/")
    panel = browser.find(".wire")
    logs = {}
    for probe in ("head", "range", "resume", "revalidate", "past-end"):
        browser.driver.execute_script("arguments[0].dataset.state = '';", panel)
        panel.find_element(By.CSS_SELECTOR, f"button[data-probe={probe}]").click()
        WebDriverWait(browser.driver, WAIT).until(
            lambda _: panel.get_attribute("data-state") == "done"
        )
        logs[probe] = panel.find_element(By.CSS_SELECTOR, ".wire-log").text
    # Each probe prints its requests ("> ...") and responses ("< status").
    statuses = {
        probe: [
            line.split()[1]
            for line in log.splitlines()
            if line[:2] == "< " and line[2:5].isdigit()
        ]
        for probe, log in logs.items()
    }
    assert statuses == {
        "head": ["200"],
        "range": ["206"],
        "resume": ["200", "206"],
        "revalidate": ["200", "304"],
        "past-end": ["200", "416"],
    }, logs
    assert "> Range: bytes=0-99" in logs["range"]
    assert "(100 bytes of body read)" in logs["range"]
    # A resumed download gets the rest (here the last 100 bytes), because
    # If-Range still matches.
    assert '> If-Range: "' in logs["resume"]
    assert "< content-range: bytes 3145633-3145732/3145733" in logs["resume"]
    assert "< content-range: bytes */3145733" in logs["past-end"]
    assert logs["revalidate"].endswith("(0 bytes of body read)")


def test_pages_fetch_nothing_from_elsewhere(
    browser: Browser, files: pathlib.Path
) -> None:
    (files / "a.txt").write_bytes(b"a")
    browser.login("browser-offline")
    browser.upload(files / "a.txt")
    for url in ("/auth/login", "/", browser.document_url("a.txt")):
        browser.get(url)
        resources = browser.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name);"
        )
        assert resources, url
        assert all(r.startswith(browser.base_url + "/static/") for r in resources)
        # The stylesheet applied: the page is not unstyled.
        background = browser.driver.execute_script(
            "return getComputedStyle(document.documentElement).backgroundColor;"
        )
        assert background == "rgb(246, 247, 249)"
