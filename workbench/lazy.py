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

:func:`vectorbt_kernels` imports the three vectorbt modules the compiled simulation calls
(``vectorbt.portfolio.nb``, ``vectorbt.portfolio.enums``, ``vectorbt.utils.math_``) without
running vectorbt's package ``__init__`` files, which import every subpackage (scipy.stats,
the indicator factory, pandas accessors: about 1.3 s of a cold backtest). The modules it
loads are taken out of ``sys.modules`` again, so a later ``import vectorbt`` in the same
process is the whole, ordinary vectorbt (its own fresh copies of those modules; the
compiled functions are the same code).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["complete_vectorbt", "defer_iri_grammar", "lazy_names", "vectorbt_kernels"]


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
    try:
        spec = importlib.util.find_spec(_GRAMMAR)
    except (ImportError, ValueError):
        return
    if spec is not None:
        sys.modules[_GRAMMAR] = _Deferred(spec)


# the packages whose __init__ the kernels' modules would run; vectorbt.base's is needed
# (its modules import each other in the order its __init__ sets)
_VBT_PACKAGES = ("vectorbt", "vectorbt.portfolio", "vectorbt.generic", "vectorbt.returns",
                 "vectorbt.utils")
_VBT_KERNELS = ("vectorbt.portfolio.nb", "vectorbt.portfolio.enums", "vectorbt.utils.math_")
_loading_kernels = False


def vectorbt_kernels() -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """``(vectorbt.portfolio.nb, vectorbt.portfolio.enums, vectorbt.utils.math_)``, imported
    without running vectorbt's package ``__init__`` files when vectorbt is not imported yet
    (see the module doc); the ordinary modules when it is.

    The packages are then :class:`_PendingPackage` modules in ``sys.modules``: each runs its
    ``__init__`` the first time a name it lacks is asked for (``vbt.Portfolio``, ``from
    vectorbt import MA``), and pandas' ``.vbt`` accessor does the same, so ``import vectorbt
    as vbt`` afterwards behaves as the ordinary import, one module of each name."""
    if "vectorbt" in sys.modules:
        return tuple(importlib.import_module(name) for name in _VBT_KERNELS)  # type: ignore[return-value]
    global _loading_kernels
    packages = []
    _loading_kernels = True
    try:
        for name in _VBT_PACKAGES:  # parents first: a child's spec is found on its path
            spec = importlib.util.find_spec(name)
            if spec is None:
                raise ImportError(f"No module named {name!r}")
            module = importlib.util.module_from_spec(spec)  # not executed
            module.__class__ = _PendingPackage
            sys.modules[name] = module
            packages.append(module)
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, module)
        kernels = tuple(importlib.import_module(name) for name in _VBT_KERNELS)
    except BaseException:
        for module in packages:
            sys.modules.pop(module.__name__, None)
        raise
    finally:
        _loading_kernels = False
    _pending_accessor()
    return kernels  # type: ignore[return-value]


class _PendingPackage(types.ModuleType):
    """A package of vectorbt whose ``__init__`` has not run: it runs (its parents' first), in
    this very module, the first time a name the module lacks is asked for, as the ordinary
    import would have run it just before. A package whose ``__init__`` is running lacks its
    names as any partially initialized module does."""

    def __getattr__(self, name: str) -> Any:
        if _loading_kernels or self.__dict__.get("_wb_running"):
            raise AttributeError(f"partially initialized module {self.__name__!r} has no "
                                 f"attribute {name!r}")
        complete_vectorbt(self.__name__)
        return getattr(self, name)


def complete_vectorbt(upto: str | None = None) -> None:
    """Run the ``__init__`` of the vectorbt packages :func:`vectorbt_kernels` left pending:
    ``upto`` and its parents, top first; None: all of them."""
    if upto is None:
        names: list[str] = list(_VBT_PACKAGES)
    else:
        parts = upto.split(".")
        names = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for name in names:
        module = sys.modules.get(name)
        if type(module) is _PendingPackage and not module.__dict__.get("_wb_running"):
            if name == "vectorbt":
                _drop_pending_accessor()  # vectorbt registers its own
            module._wb_running = True
            try:
                module.__spec__.loader.exec_module(module)
            finally:
                del module._wb_running
            module.__class__ = types.ModuleType


def _pending_accessor() -> None:
    """pandas' ``.vbt`` on Series and DataFrame until vectorbt's ``__init__`` registers its
    own: the first use completes vectorbt and answers with vectorbt's accessor."""
    import pandas as pd
    from pandas.api.extensions import register_dataframe_accessor, register_series_accessor

    if hasattr(pd.Series, "vbt") or hasattr(pd.DataFrame, "vbt"):
        return

    def pending(obj: Any) -> Any:
        complete_vectorbt()
        return getattr(obj, "vbt")

    pending.__wb_pending__ = True  # type: ignore[attr-defined]
    register_series_accessor("vbt")(pending)
    register_dataframe_accessor("vbt")(pending)


def _drop_pending_accessor() -> None:
    pd = sys.modules.get("pandas")
    for cls in (pd.Series, pd.DataFrame) if pd is not None else ():
        accessor = cls.__dict__.get("vbt")
        if getattr(getattr(accessor, "_accessor", None), "__wb_pending__", False):
            delattr(cls, "vbt")
            cls._accessors.discard("vbt")
