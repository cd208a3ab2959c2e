"""``Content-Disposition`` values: file names cleaned, and their ASCII fallbacks."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import unicodedata
from urllib.parse import quote

# Characters deleted from ASCII file names: C0 controls (TAB, CR, LF, NUL...)
# and DEL. Other names also lose C1 controls and every Unicode format
# character (category Cf: bidi controls that make "exe.txt" display as
# "txt.exe", U+061C, zero-width characters...), see _clean_name.
_UNSAFE_ASCII = re.compile("[\x00-\x1f\x7f]")
# RFC 8187 §3.2.1 attr-char, besides ALPHA and DIGIT (quote() keeps those).
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"
# Longest file name put in a header, in characters (most file systems allow 255).
MAX_NAME_LENGTH = 255
# Longest extension (dot included) a truncated name keeps whole.
_MAX_EXTENSION_LENGTH = 32


def _clean_name(name: str) -> str | None:
    if name.isascii():
        name = _UNSAFE_ASCII.sub("", name)
    else:
        # A name read from a non-UTF-8 file system holds lone surrogates
        # (os.fsdecode's surrogateescape), which cannot be encoded: turn the
        # undecodable bytes into U+FFFD instead of failing.
        try:
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = name.encode("utf-8", "replace")
        name = raw.decode("utf-8", "replace")
        category = unicodedata.category
        name = "".join(c for c in name if category(c) not in ("Cc", "Cf"))
    name = name.strip()
    if name in ("", ".", ".."):
        return None
    if len(name) > MAX_NAME_LENGTH:
        stem, ext = os.path.splitext(name)
        # A longer "extension" is cut, never dropped: dropping it would make
        # the one before it the last ("report.html.xxx..." would become
        # "report.html"), and no type worth hiding has 31 letters.
        ext = ext[:_MAX_EXTENSION_LENGTH]
        name = stem[: MAX_NAME_LENGTH - len(ext)] + ext
    return name


# Punctuation NFKD leaves alone, mapped to its ASCII look-alike.
_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2039\u203a", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        "\u2026": "_",
        "\u00d7": "x",
        "\u00df": "ss",
        "\u00e6": "ae",
        "\u00c6": "AE",
        "\u0153": "oe",
        "\u0152": "OE",
        "\u00f8": "o",
        "\u00d8": "O",
        "\u0142": "l",
        "\u0141": "L",
        "\u0111": "d",
        "\u0110": "D",
        "\u00f0": "d",
        "\u00fe": "th",
        "\u0131": "i",
    }
)
# An extension kept in the fallback: ASCII letters and digits after the dot.
_ASCII_EXTENSION = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9_+-]{0,31}")
# What folding may never add: a new extension or path separator.
_FORBIDDEN_FOLDED = str.maketrans(dict.fromkeys("./\\", "_"))


def _fold_char(char: str) -> str:
    if char.isascii():
        return char
    mapped = char.translate(_PUNCTUATION)
    if mapped != char:
        return mapped
    if unicodedata.category(char) == "Zs":
        return " "  # no-break, en, ideographic... spaces
    folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    # NFKD turns U+2024 ONE DOT LEADER and U+FF0E FULLWIDTH FULL STOP into
    # ".", and U+FF0F into "/": they may not become an extension or a path.
    return folded.translate(_FORBIDDEN_FOLDED)


def _ascii_fallback(name: str) -> str:
    """An ASCII ``filename`` for a non-ASCII name (RFC 6266 §4.3).

    Only the stem is folded, one character at a time (``é`` -> ``e``, ``–``
    -> ``-``, a no-break space -> a space); the extension is kept if it is
    ASCII. Folding never makes a new ``.``, ``/`` or ``\\``, so
    ``report\u2024exe`` cannot become ``report.exe``. Letters of other scripts,
    which do not fold, are replaced by a short hash of the whole name, so
    ``報告.pdf`` becomes ``f1c2d3e4.pdf`` rather than an empty name, and
    ``архив.tar.gz`` becomes ``1a2b3c4d.tar.gz``.
    """
    stem, ext = os.path.splitext(name)
    if ext == ".":
        ext = ""
    elif ext and not _ASCII_EXTENSION.fullmatch(ext):
        # A non-ASCII "extension" (".ｈｔｍｌ") is part of the name, folded
        # like the rest, behind an underscore instead of its dot.
        stem, ext = stem + "_" + ext[1:], ""
    parts: list[str] = []
    lost = False
    for char in stem:
        folded = _fold_char(char)
        if not folded and unicodedata.category(char)[0] in "LN":
            lost = True
        parts.append(folded)
    text = _UNSAFE_ASCII.sub("", "".join(parts))
    text = " ".join(text.split())  # runs of spaces collapse to one
    leading_dot = text.startswith(".")
    # Symbols that fold to nothing ("😀😀.tar" of "😀😀.tar.gz") leave the
    # inner extension first: its dot must not be lost ("tar.gz").
    dropped = leading_dot and not stem.lstrip(" ").startswith(".")
    text = text.strip(" .")
    inner = leading_dot and _ASCII_EXTENSION.fullmatch("." + text) is not None
    if lost or not text or (dropped and inner):
        digest = hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:8]
        if (lost or dropped) and inner:
            # Nothing before the dot folded ("архив.tar" of "архив.tar.gz"):
            # the hash goes where those letters were, before the inner
            # extension, which stays one ("1a2b3c4d.tar.gz").
            text = f"{digest}.{text}"
        else:
            text = f"{text}-{digest}" if text else digest
    return text + ext


def _quoted_string(value: str) -> str:
    # RFC 9110 §5.6.4: backslash and double quote are escaped in a quoted-string.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=512)
def content_disposition(basename: str | None, attachment: bool = True) -> str:
    """Build a ``Content-Disposition`` value (RFC 6266) for a file name.

    An ASCII name goes out as ``filename="..."``; any other name also gets
    ``filename*=UTF-8''...`` (RFC 8187) after an ASCII ``filename`` fallback
    that keeps the extension. Control and bidi characters are deleted, so
    nothing in a name can add a header or a parameter. Empty names, ``.``
    and ``..`` give no ``filename`` at all.

    :param basename: the client-side file name, or ``None``.
    :param attachment: ``attachment`` (save) or ``inline`` (display).
    """
    disposition = "attachment" if attachment else "inline"
    name = None if basename is None else _clean_name(basename)
    if name is None:
        return disposition
    if name.isascii():
        return f"{disposition}; filename={_quoted_string(name)}"
    fallback = _quoted_string(_ascii_fallback(name))
    encoded = quote(name, safe=_ATTR_CHAR_SAFE, encoding="utf-8")
    return f"{disposition}; filename={fallback}; filename*=UTF-8''{encoded}"
