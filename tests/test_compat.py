from __future__ import annotations

import sys

import pytest

from flask_download._compat import require


def test_require_returns_the_module() -> None:
    assert require("json", "none", "Tests") is sys.modules["json"]


@pytest.mark.parametrize(
    ("module", "extra", "feature"),
    [
        ("urllib3", "http", "Remote files"),
        ("fsspec", "storage", "Storages"),
        ("sqlalchemy.orm", "sqlalchemy", "Model downloads"),
    ],
    ids=["http", "storage", "sqlalchemy"],
)
def test_missing_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str, feature: str
) -> None:
    # A None entry in sys.modules makes the import fail as if not installed.
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError) as info:
        require(module, extra, feature)
    message = str(info.value)
    assert feature in message
    assert f"pip install 'Flask-Download[{extra}]'" in message
