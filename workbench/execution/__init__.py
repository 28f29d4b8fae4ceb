"""Notebook runs: papermill executes a strategy notebook in a mode, and the run is recorded.

The very notebook a researcher backtested is what runs, with its parameters, as a backtest,
a sweep, a parity check or a paper/live session. ``hashing`` names a notebook's code (the
hash promotion gates and deployments key on); ``params`` checks parameters before a kernel
starts; ``run`` prepares and executes a run and records its outcome; ``scrub`` keeps
credentials out of the executed notebook; ``child`` executes a prepared run in a process
of its own. Importing this package imports nothing else and changes nothing.

One start-up cost is deferred, by the runner: nbformat imports jsonschema, which, when
``rfc3987-syntax`` is installed (a dependency of the Jupyter stack), imports it to check
the ``iri`` string format, and that package compiles its IRI grammar at import: 1 to 3 s of
a notebook run's start on this machine, for a format no notebook schema uses. Just before
the runner first imports nbformat or papermill (:func:`defer_iri_grammar`, called by
``params`` and ``run``; it lives in :mod:`workbench.lazy`), ``rfc3987_syntax`` is stood in
for by a module that imports the real one on first use: the ``iri`` format check still
exists and still works, and costs its seconds only in a process that checks an IRI. A
kernel gets the same stand-in from :mod:`workbench.backtesting` (vectorbt and plotly
reach nbformat too).
"""

from __future__ import annotations

from workbench.lazy import defer_iri_grammar

__all__ = ["defer_iri_grammar"]
