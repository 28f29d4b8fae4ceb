"""Two processes read the store with DuckDB while a third appends: no error, no partial file."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT
from tests.store_procs import expected


def test_readers_never_see_partial_files(tmp_path):
    root = tmp_path / "data"
    outs = {name: tmp_path / f"{name}.json" for name in ("writer", "reader1", "reader2")}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "tests.store_procs", name.rstrip("12"), str(root), str(out)],
            cwd=ROOT,
        )
        for name, out in outs.items()
    }
    for name, proc in procs.items():
        assert proc.wait(timeout=240) == 0, f"{name} exited {proc.returncode}"
    results = {name: json.loads(out.read_text()) for name, out in outs.items()}
    total = len(expected())
    for name in ("reader1", "reader2"):
        r = results[name]
        assert r["errors"] == [] and r["partial"] == [], r
        assert r["loads"] >= 3, f"{name} only loaded {r['loads']} times: no overlap with the writer"
        assert r["rows"] == total
    assert not list((root / "tmp").glob("*")), "temporary files left behind"
