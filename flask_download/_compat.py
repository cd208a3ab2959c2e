"""Optional dependencies, imported on first use with an error naming the extra."""

from __future__ import annotations

import importlib
import types


def require(module: str, extra: str, feature: str) -> types.ModuleType:
    """Import ``module`` or raise an :exc:`ImportError` that says what to install.

    :param module: the module to import, such as ``"urllib3"``.
    :param extra: the Flask-Download extra that installs it, such as ``"http"``.
    :param feature: what needs it, for the message ("Remote files").
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{feature} need {module.partition('.')[0]!r}: pip install"
            f" 'Flask-Download[{extra}]'."
        ) from e
