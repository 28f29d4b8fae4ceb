"""Notebook runs: papermill executes a strategy notebook in a mode, and the run is recorded.

The very notebook a researcher backtested is what runs, with its parameters, as a backtest,
a sweep, a parity check or a paper/live session. ``hashing`` names a notebook's code (the
hash promotion gates and deployments key on); ``params`` checks parameters before a kernel
starts; ``run`` prepares and executes a run and records its outcome; ``scrub`` keeps
credentials out of the executed notebook; ``child`` executes a prepared run in a process
of its own. Importing this package imports nothing else and changes nothing.

One start-up cost is deferred here, by the runner only: nbformat imports jsonschema, which,
when ``rfc3987-syntax`` is installed (a dependency of the Jupyter stack), imports it to
check the ``iri`` string format, and that package compiles its IRI grammar at import: 3.2 s
of a notebook run's start on this machine, for a format no notebook schema uses. Just
before the runner first imports nbformat or papermill (:func:`defer_iri_grammar`, called
by ``params`` and ``run``), ``rfc3987_syntax`` is stood in for by a module that imports the
real one on first use: the ``iri`` format check still exists and still works, and costs
its 3.2 s only in a process that checks an IRI. Other processes importing this package (a
kernel calling ``wb.run``) are not touched.
"""

from __future__ import annotations

import sys as _sys
import types as _types
from typing import Any as _Any

__all__ = ["defer_iri_grammar"]

_GRAMMAR = "rfc3987_syntax"


class _Deferred(_types.ModuleType):
    """Stands in for a module until one of its names is used, then is the real module."""

    def __init__(self, spec: _Any) -> None:
        super().__init__(spec.name)
        self.__spec__, self.__loader__, self.__file__ = spec, spec.loader, spec.origin
        if spec.submodule_search_locations is not None:
            self.__path__ = list(spec.submodule_search_locations)
        self.__real: _types.ModuleType | None = None

        def is_valid_syntax(*args: _Any, **kwargs: _Any) -> _Any:  # jsonschema's only name
            return self._real().is_valid_syntax(*args, **kwargs)

        self.is_valid_syntax = is_valid_syntax

    def _real(self) -> _types.ModuleType:
        if self.__real is None:
            import importlib

            if _sys.modules.get(self.__name__) is self:
                del _sys.modules[self.__name__]
            self.__real = importlib.import_module(self.__name__)
        return self.__real

    def __getattr__(self, name: str) -> _Any:
        if name.startswith(("__", "_Deferred__")):
            raise AttributeError(name)
        return getattr(self._real(), name)


def defer_iri_grammar() -> None:
    """Before nbformat's first import in this process: stand in for ``rfc3987_syntax`` (see
    the module doc). Nothing happens when jsonschema or the grammar is imported already or
    the grammar is not installed."""
    if "jsonschema" in _sys.modules or _GRAMMAR in _sys.modules:
        return
    import importlib.util

    try:
        spec = importlib.util.find_spec(_GRAMMAR)
    except (ImportError, ValueError):
        return
    if spec is not None:
        _sys.modules[_GRAMMAR] = _Deferred(spec)
