"""Notebook runs: papermill executes a strategy notebook in a mode, and the run is recorded.

The very notebook a researcher backtested is what runs, with its parameters, as a backtest,
a sweep, a parity check or a paper/live session. ``hashing`` names a notebook's code (the
hash promotion gates and deployments key on); ``params`` checks parameters before a kernel
starts; ``run`` prepares and executes a run and records its outcome; ``scrub`` keeps
credentials out of the executed notebook; ``child`` executes a prepared run in a process
of its own. Importing this package imports nothing else.

One start-up cost is cut here: nbformat imports jsonschema, which, when ``rfc3987-syntax``
is installed (a dependency of the Jupyter stack), compiles that package's IRI grammar at
import: 3.2 s of a notebook run's start on this machine, for a string format no notebook
schema uses. Unless something imported jsonschema already, the grammar is marked absent,
which jsonschema handles as not installed (no ``iri`` format check).
"""

import sys as _sys

if "jsonschema" not in _sys.modules:
    _sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
