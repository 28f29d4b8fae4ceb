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

:func:`defer_iri_grammar` defers a module the same way: ``rfc3987_syntax`` (jsonschema's
``iri`` format check, reached through nbformat by papermill, plotly and vectorbt) compiles
its grammar at import, 1 to 3 s; a stand-in imports the real module on first use, so the
check still works, at its cost, only in a process that checks an IRI.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["defer_iri_grammar", "lazy_names"]


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


_GRAMMAR = "rfc3987_syntax"


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its names is used, then is the real module."""

    def __init__(self, spec: Any) -> None:
        super().__init__(spec.name)
        self.__spec__, self.__loader__, self.__file__ = spec, spec.loader, spec.origin
        if spec.submodule_search_locations is not None:
            self.__path__ = list(spec.submodule_search_locations)
        self.__real: types.ModuleType | None = None

        def is_valid_syntax(*args: Any, **kwargs: Any) -> Any:  # jsonschema's only name
            return self._real().is_valid_syntax(*args, **kwargs)

        self.is_valid_syntax = is_valid_syntax

    def _real(self) -> types.ModuleType:
        if self.__real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            self.__real = importlib.import_module(self.__name__)
        return self.__real

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_Deferred__")):
            raise AttributeError(name)
        return getattr(self._real(), name)


def defer_iri_grammar() -> None:
    """Before nbformat's first import in this process: stand in for ``rfc3987_syntax`` (see
    the module doc). Nothing happens when jsonschema or the grammar is imported already or
    the grammar is not installed."""
    if "jsonschema" in sys.modules or _GRAMMAR in sys.modules:
        return
    import importlib.util

    try:
        spec = importlib.util.find_spec(_GRAMMAR)
    except (ImportError, ValueError):
        return
    if spec is not None:
        sys.modules[_GRAMMAR] = _Deferred(spec)
