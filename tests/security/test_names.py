"""Hostile client-side file names: one Content-Disposition, nothing injected.

Names come from a fixed list (as a database row or a disk listing would give
them) and from the URL (query string and path). Whatever the name, the answer
has exactly one ``Content-Disposition`` of bounded length with at most one
``filename`` and one ``filename*`` parameter, no control or bidi character
in them, and no header line besides those of an ordinary download.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote
from urllib.parse import unquote

import pytest

from .conftest import HOSTILE_NAMES
from .conftest import LiveServer
from .conftest import RawResponse

#: Longest Content-Disposition accepted: 255 characters, each up to 12
#: bytes percent-encoded, plus an escaped ASCII fallback, stays below it.
MAX_DISPOSITION_LENGTH = 4096

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 9110 §5.6.4: quoted-string, with quoted-pairs; no CTL but HTAB.
_QUOTED = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
_PARAM = rf"[ \t]*;[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})"
_DISPOSITION = re.compile(rf"({_TOKEN})((?:{_PARAM})*)")
# RFC 8187 §3.2.1: ext-value = charset "'" [ language ] "'" value-chars.
_EXT_VALUE = re.compile(
    r"UTF-8'[A-Za-z0-9-]*'((?:%[0-9A-F]{2}|[A-Za-z0-9!#$&+\-.^_`|~])*)"
)
# Characters a displayed name must not hold: controls (Cc) and every
# invisible formatting character (Cf: bidi controls, U+061C, zero widths...).
_UNSAFE = re.compile(
    "["
    + "".join(
        re.escape(chr(c))
        for c in range(0x110000)
        if unicodedata.category(chr(c)) in ("Cc", "Cf")
    )
    + "]"
)


def parse_disposition(value: str) -> tuple[str, list[tuple[str, str]]]:
    """Parse a Content-Disposition strictly (RFC 6266); fail on anything odd."""
    match = _DISPOSITION.fullmatch(value)
    assert match is not None, f"malformed Content-Disposition {value!r}"
    params = []
    for name, raw in re.findall(_PARAM, match.group(2)):
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.append((name.lower(), raw))
    return match.group(1).lower(), params


def check_disposition(
    response: RawResponse, attachment: bool = True, body: bytes = b"name test\n"
) -> list[str]:
    """The name checks; returns the decoded names it carries."""
    assert response.status == 200, response
    values = response.get_all("Content-Disposition")
    assert len(values) == 1, values
    value = values[0]
    assert len(value) <= MAX_DISPOSITION_LENGTH, len(value)
    kind, params = parse_disposition(value)
    assert kind == ("attachment" if attachment else "inline")
    names = [name for name, _ in params]
    assert set(names) <= {"filename", "filename*"}, params
    assert names.count("filename") <= 1 and names.count("filename*") <= 1, params
    decoded: list[str] = []
    for name, raw in params:
        if name == "filename*":
            assert "filename" in names, "filename* without an ASCII fallback"
            ext = _EXT_VALUE.fullmatch(raw)
            assert ext is not None, f"malformed ext-value {raw!r}"
            text = unquote(ext.group(1), encoding="utf-8", errors="strict")
        else:
            text = raw
            assert text.isascii(), f"non-ASCII filename {text!r}"
        assert text not in ("", ".", ".."), params
        assert not _UNSAFE.search(text), f"unsafe character in {text!r}"
        decoded.append(text)
    # Nothing else than an ordinary download's headers.
    assert {n.lower() for n, _ in response.headers} <= ORDINARY_HEADERS
    assert response.body == body
    return decoded


ORDINARY_HEADERS = frozenset(
    {
        "server",
        "date",
        "connection",
        "content-type",
        "content-length",
        "content-disposition",
        "x-content-type-options",
        "etag",
        "last-modified",
        "accept-ranges",
        "cache-control",
        "content-encoding",
    }
)


@pytest.mark.parametrize("key", HOSTILE_NAMES.keys(), ids=HOSTILE_NAMES.keys())
def test_hostile_names_give_one_clean_content_disposition(
    live: LiveServer, key: str
) -> None:
    decoded = check_disposition(live.request(f"/fixed/{key}"))
    name = HOSTILE_NAMES[key]
    cleaned = _UNSAFE.sub("", name).strip()
    if cleaned in ("", ".", ".."):
        # Nothing left to name the file with: no filename at all.
        assert decoded == []
    else:
        assert decoded, "a usable name was dropped"


#: Names a URL can carry, percent-encoded in the query: no lone surrogates,
#: and none longer than the server's 64 KiB request line (it answers 414).
QUERY_NAMES = {
    k: v
    for k, v in HOSTILE_NAMES.items()
    if k not in ("surrogate-escape", "10kb-emoji")
}


@pytest.mark.parametrize("name", QUERY_NAMES.values(), ids=QUERY_NAMES.keys())
def test_names_from_the_query_string(live: LiveServer, name: str) -> None:
    check_disposition(live.request("/name?n=" + quote(name, safe="")))


@pytest.mark.parametrize(
    "raw_name",
    [
        "evil%0dSet-Cookie:%20a=b.txt",
        "evil%00.txt",
        "evil%7f.txt",
        "invoice%e2%80%aegpj.exe",
        "a.txt%22;%20filename*=UTF-8''evil.exe",
        "a.txt;%20filename=evil.exe",
        "%2e",
        "%2e%2e",
        "%ff%fe.txt",
        "a" * 4000 + ".txt",
        "%c3%a9" * 1000 + ".txt",
    ],
    ids=[
        "cr",
        "nul",
        "del",
        "bidi",
        "quote-filename-star",
        "semicolon",
        "dot",
        "dotdot",
        "invalid-utf8",
        "4k-ascii",
        "1k-unicode",
    ],
)
def test_names_from_the_url_path(live: LiveServer, raw_name: str) -> None:
    response = live.request("/name/" + raw_name)
    if response.status in (301, 302, 307, 308):
        response = live.follow(response)
    check_disposition(response)


@pytest.mark.parametrize(
    "raw_name",
    ["evil%0d%0aSet-Cookie:%20a=b.txt", "evil%0aX-Injected:%201.txt"],
    ids=["crlf", "lf"],
)
def test_newlines_in_url_paths_never_reach_the_view(
    live: LiveServer, raw_name: str
) -> None:
    """Werkzeug's ``path`` converter does not match LF: routing answers 404."""
    assert live.request("/name/" + raw_name).status == 404


def test_undecodable_file_name_on_disk(live: LiveServer) -> None:
    """A disk name that is not UTF-8 (``os.fsdecode`` gives lone surrogates).

    ``PathDownloadView(path=...)`` names the file after the path, so the
    name holds ``\udce9``: the answer is still a clean download.
    """
    decoded = check_disposition(live.request("/undecodable"), body=b"cafe\n")
    assert decoded and all(name.endswith(".txt") for name in decoded)


def test_crlf_in_a_name_does_not_split_the_header(live: LiveServer) -> None:
    """The raw bytes hold no header line made of the name's tail."""
    response = live.request("/fixed/crlf-header")
    head = response.raw.partition(b"\r\n\r\n")[0]
    assert b"\r\nSet-Cookie" not in head
    assert len(response.get_all("Content-Disposition")) == 1
    assert check_disposition(response) == ["evilSet-Cookie: a=b.txt"]


def test_quote_cannot_add_a_filename_star_parameter(live: LiveServer) -> None:
    response = live.request("/fixed/quote-add-filename-star")
    kind, params = parse_disposition(response.header("Content-Disposition") or "")
    assert params == [("filename", "a.txt\"; filename*=UTF-8''evil.exe")]


def test_bidi_override_is_deleted(live: LiveServer) -> None:
    decoded = check_disposition(live.request("/fixed/bidi-rlo"))
    assert decoded == ["invoicegpj.exe"]


def test_long_names_are_capped_keeping_the_extension(live: LiveServer) -> None:
    for key, extension in [("10kb-ascii", ".txt"), ("10kb-unicode", ".txt")]:
        decoded = check_disposition(live.request(f"/fixed/{key}"))
        assert all(len(name) <= 255 for name in decoded), key
        assert all(name.endswith(extension) for name in decoded), decoded


# -- the ASCII fallback (#12) ----------------------------------------------------

#: Names whose NFKD folding used to invent an extension or a path.
INVENTED = {
    "one-dot-leader": "report\u2024exe",
    "fullwidth-stop": "invoice\uff0eexe",
    "fullwidth-extension": "x.\uff48\uff54\uff4d\uff4c",
    "small-full-stop": "a\ufe52exe",
    "fullwidth-solidus": "a\uff0f..\uff0fetc\uff0fpasswd",
    "fullwidth-reverse-solidus": "a\uff3c..\uff3cboot.ini",
    "ellipsis": "x\u2026exe",
}


def _fallback(response: RawResponse) -> str:
    check_disposition(response)
    _, params = parse_disposition(response.header("Content-Disposition") or "")
    return dict(params)["filename"]


@pytest.mark.parametrize("name", INVENTED.values(), ids=INVENTED.keys())
def test_fallback_never_invents_a_dot_or_a_separator(
    live: LiveServer, name: str
) -> None:
    fallback = _fallback(live.request("/name?n=" + quote(name)))
    original_ascii = "".join(c for c in name if c.isascii())
    for char in "./\\":
        assert fallback.count(char) <= original_ascii.count(char), fallback
    assert not fallback.lower().endswith((".exe", ".html", ".ini")) or name.endswith(
        ".ini"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("R\u00e9sum\u00e9 \u2013 2026.txt", "Resume - 2026.txt"),
        ("\u201cQuoted\u201d \u2018name\u2019.pdf", "\"Quoted\" 'name'.pdf"),
        ("a\u00a0\u2003\u3000b.txt", "a b.txt"),
        ("Stra\u00dfe \u00d7 2.csv", "Strasse x 2.csv"),
        ("na\u00efve \u2014 caf\u00e9.tar.gz", "naive - cafe.tar.gz"),
        ("x.\uff48\uff54\uff4d\uff4c", "x_html"),
    ],
)
def test_fallback_reads_well(live: LiveServer, name: str, expected: str) -> None:
    assert _fallback(live.request("/name?n=" + quote(name))) == expected


@pytest.mark.parametrize(
    "name",
    ["\u5831\u544a\u66f8.pdf", "\u043e\u0442\u0447\u0451\u0442.docx", "\u062a.xlsx"],
    ids=["cjk", "cyrillic", "arabic"],
)
def test_fallback_of_other_scripts_keeps_the_extension_and_a_hash(
    live: LiveServer, name: str
) -> None:
    fallback = _fallback(live.request("/name?n=" + quote(name)))
    stem, _, ext = fallback.rpartition(".")
    assert "." + ext == name[name.rindex(".") :]
    assert re.fullmatch(r"[0-9a-f]{8}", stem), fallback


def test_fallbacks_of_different_names_differ(live: LiveServer) -> None:
    names = ["\u5831\u544a.pdf", "\u8acb\u6c42.pdf", "\u5831\u544a 2026.pdf"]
    fallbacks = {_fallback(live.request("/name?n=" + quote(n))) for n in names}
    assert len(fallbacks) == len(names)


#: Invisible formatting characters (Unicode category Cf), each between letters.
FORMAT_CHARACTERS = {
    "arabic-letter-mark": "\u061c",
    "soft-hyphen": "\u00ad",
    "zero-width-space": "\u200b",
    "zero-width-joiner": "\u200d",
    "word-joiner": "\u2060",
    "bom": "\ufeff",
    "mongolian-vowel-separator": "\u180e",
    "tag-character": "\U000e0041",
    "interlinear-annotation": "\ufff9",
    "lrm": "\u200e",
    "rlo": "\u202e",
    "fsi": "\u2068",
}


@pytest.mark.parametrize(
    "char", FORMAT_CHARACTERS.values(), ids=FORMAT_CHARACTERS.keys()
)
def test_every_format_character_is_removed(live: LiveServer, char: str) -> None:
    """U+061C survived while other bidi controls were deleted (#12)."""
    decoded = check_disposition(live.request("/name?n=" + quote(f"ab{char}c.txt")))
    assert set(decoded) == {"abc.txt"}
