"""Subcommands of `ewh` beyond generate and load: one module each, registered with
`ewh.cli.command`. Every module in this package is imported when the parser is built."""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
