"""Names a package binds on first use, so that importing it stays cheap.

    __getattr__, __dir__ = lazy_names(__name__, {
        "Store": "workbench.data.store",                 # the module's attribute of that name
        "ta": ("workbench.ta", None),                    # the module itself
        "crossed_above": ("workbench.crossings", "crossed_above"),
    })

The first access imports the module and binds the name in the package, so later accesses
cost nothing. A name the package does not have is an ``AttributeError``, as usual. Never
give a lazy name the name of one of the package's own submodules: importing that submodule
would bind the module over it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, homes: Mapping[str, str | tuple[str, str | None]]
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``'s lazily bound ``homes``."""
    where = {name: (home, name) if isinstance(home, str) else home
             for name, home in homes.items()}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, attr = where[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
