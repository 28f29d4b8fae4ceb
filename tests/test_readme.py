"""The README is tested: its examples run on the data `make demo` makes.

Every `workbench ...` line of a ```sh block (after optional VAR=value assignments) runs, in
the README's order, through bash from the project's folder; every ```python block runs in a
fresh interpreter; both in a copy of the home one `workbench demo` populated
(tests/demo_run.py, shared with tests/test_demo.py). An example that cannot run here is
marked in the README, `(not run: why)` on a sh line or `# not run: why` as a python block's
first line, and is reported skipped with that reason, never left out silently.

Consecutive lines of one block that each run a notebook (`workbench backtest|sweep|session|
run|parity`) only read what the lines before them left and each write a record of their
own: the first of them to be tested starts them all together (their kernels overlap), and
each is still judged by its own test; the next line runs after all of them have ended.

A line that only reads or lists (``data ls``, ``config``, ``status``, ... : :data:`INLINE`),
with no shell syntax, runs in this process through click's runner (``wb_inline``: the same
parsing, output and exit code, in the same environment and folder) instead of a new Python
process each. A line holding ``DEPLOYMENT_ID`` runs with the id of the newest deployment
(the one the README's promote line registered). The `make` lines are the README's too: each names a Makefile target whose
recipe runs a `workbench` command that a named test runs (`make demo`: tests/test_demo.py
on the very run these examples use; `make lab`: tests/test_lab.py serves and answers), or,
`make test`, the suite itself.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, wb_inline
from tests.demo_run import demo_run

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
COMMAND = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*=\S+\s+)*workbench\s")
NOT_RUN = re.compile(r"\(not run: ([^)]*)\)")
# read-only or listing commands, run in this process when the line has no shell syntax
INLINE = re.compile(r"^workbench\s+(data\s+(ls|synth|quarantine|rm\s+--help)|kernel\s+install|"
                    r"config|status|deployments|retire|schedule\s+--dry-run)(\s|$)")
SHELL = set("|&;<>$`(){}*?")
NOTEBOOK_RUN = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*=\S+\s+)*workbench\s+"
                          r"(backtest|sweep|session|run|parity)\s")


@dataclass(frozen=True)
class Example:
    kind: str  # sh | python
    code: str
    line: int  # in README.md
    not_run: str | None  # why, when the README marks it

    @property
    def id(self) -> str:
        first = self.code.strip().splitlines()[0].split("  #")[0]
        return f"L{self.line}:{' '.join(first.split())[:70]}"


def _blocks() -> list[tuple[str, str, int]]:
    text = README.read_text()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start(2)) + 1)
            for m in FENCE.finditer(text)]


def examples() -> list[Example]:
    out = []
    for lang, body, start in _blocks():
        if lang == "python":
            first = body.splitlines()[0] if body.strip() else ""
            mark = re.match(r"#\s*not run:\s*(.*)", first)
            out.append(Example("python", body, start, mark.group(1) if mark else None))
        elif lang == "sh":
            for offset, line in _sh_lines(body):
                if COMMAND.match(line):
                    mark = NOT_RUN.search(line)
                    out.append(Example("sh", line, start + offset,
                                       mark.group(1) if mark else None))
    return out


def _sh_lines(body: str) -> list[tuple[int, str]]:
    """(offset, line) with backslash continuations joined."""
    out, pending, at = [], "", 0
    for i, raw in enumerate(body.splitlines()):
        if not pending:
            at = i
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        out.append((at, (pending + raw).strip()))
        pending = ""
    return [(i, line) for i, line in out if line and not line.startswith("#")]


EXAMPLES = examples()


def batches(examples_: list[Example]) -> dict[int, tuple[int, ...]]:
    """Index of an example -> the indexes started with it: a run of consecutive notebook-run
    lines of one sh block (not-run ones left out), started when its first is tested."""
    out: dict[int, tuple[int, ...]] = {}
    group: list[int] = []

    def close() -> None:
        for i in group:
            out[i] = tuple(group)
        group.clear()

    for i, e in enumerate(examples_):
        runs = e.kind == "sh" and e.not_run is None and NOTEBOOK_RUN.match(e.code)
        if not runs:
            if e.not_run is None:
                close()
            continue
        if group and e.line - examples_[group[-1]].line != 1:
            close()  # not the next line of the same block
        group.append(i)
    close()
    return out


BATCHES = batches(EXAMPLES)


def test_the_readme_has_examples_and_none_escapes_the_test():
    kinds = [e.kind for e in EXAMPLES]
    assert kinds.count("sh") >= 15 and kinds.count("python") >= 3
    for lang, body, start in _blocks():  # every sh line is a workbench example or `make`
        assert lang in ("sh", "python", ""), f"README line {start}: a ```{lang} block"
        if lang == "sh":
            for offset, line in _sh_lines(body):
                assert COMMAND.match(line) or line.startswith("make "), \
                    f"README line {start + offset}: {line!r} is neither run nor marked"
    marked = [e for e in EXAMPLES if e.not_run is not None]
    assert all(e.not_run.strip() for e in marked)


@pytest.fixture(scope="module")
def readme_env(jupyter_env, tmp_path_factory) -> dict:
    run = demo_run(jupyter_env, tmp_path_factory)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    home = tmp_path_factory.mktemp("readme") / "home"
    shutil.copytree(run.home, home)
    env = {k: v for k, v in jupyter_env.items() if not k.startswith("WORKBENCH__")
           and k not in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "WORKBENCH_CONFIG")}
    return {**env, "WORKBENCH_HOME": str(home),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}


def test_the_notebook_runs_started_together_are_consecutive_lines_of_one_block():
    started = {group for group in BATCHES.values() if len(group) > 1}
    assert len(started) >= 2  # the strategy block's and the promotion block's
    for group in started:
        assert all(NOTEBOOK_RUN.match(EXAMPLES[i].code) for i in group)
        assert [EXAMPLES[i].line for i in group] == list(
            range(EXAMPLES[group[0]].line, EXAMPLES[group[0]].line + len(group)))
    promote = next(i for i, e in enumerate(EXAMPLES) if " promote " in e.code)
    assert promote not in BATCHES and promote - 1 in BATCHES  # it waits for its evidence


def _filled(code: str, env: dict) -> str:
    """``code`` with its placeholders filled: DEPLOYMENT_ID, the newest deployment's id (the
    one the README's promote line registered)."""
    if "DEPLOYMENT_ID" in code:
        import json

        listed = wb_inline("deployments", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        newest = max(json.loads(listed.stdout), key=lambda d: d["created_at"])
        code = code.replace("DEPLOYMENT_ID", newest["id"])
    return code


def inline(example: Example) -> bool:
    """Whether the example runs in this process (see the module doc)."""
    return (example.kind == "sh" and INLINE.match(example.code) is not None
            and not SHELL & set(example.code.split("  #")[0]))


def test_cheap_lines_run_in_process_and_notebook_runs_never_do():
    chosen = [e.code.split("  #")[0].strip() for e in EXAMPLES if inline(e)]
    assert "workbench data ls" in chosen and "workbench config" in chosen
    assert not any(NOTEBOOK_RUN.match(c) or " promote " in c or "fake-alpaca" in c
                   for c in chosen)


MAKE_LINE = re.compile(r"^make\s+(\S+)")
# the README's make targets -> the test that runs the command its recipe runs
# (the command, the test file, what in it runs the command)
MAKE_TESTED = {"demo": ("workbench demo", "tests/test_demo.py", "demo_run("),
               "lab": ("workbench lab", "tests/test_lab.py", '"lab", "--port"'),
               "test": ("pytest", None, None)}  # the suite itself: this very test runs in it


def _recipes() -> dict[str, str]:
    out, target = {}, None
    for line in (ROOT / "Makefile").read_text().splitlines():
        found = re.match(r"^([A-Za-z][\w-]*):", line)
        if found:
            target = found.group(1)
            out[target] = ""
        elif line.startswith("\t") and target:
            out[target] += line.strip() + "\n"
        elif line.strip() and not line.startswith("#"):
            target = None
    return out


def test_every_make_line_runs_a_command_a_test_runs():
    recipes = _recipes()
    made = [MAKE_LINE.match(line).group(1) for lang, body, _ in _blocks() if lang == "sh"
            for _, line in _sh_lines(body) if MAKE_LINE.match(line)]
    assert set(made) == set(MAKE_TESTED), made
    for target in made:
        command, test_file, runs_it = MAKE_TESTED[target]
        recipe = recipes.get(target, "")
        assert command in recipe.replace("$(BIN)/", ""), \
            f"make {target}: its recipe {recipe!r} does not run {command}"
        if test_file:
            text = (ROOT / test_file).read_text()
            assert runs_it in text, f"{test_file} does not run {command}"
    from tests import early_runs  # the demo these examples run on is `workbench demo`

    assert '"demo"]' in (ROOT / "tests" / "early_runs.py").read_text() and early_runs.demo


def _argv(example: Example) -> list[str]:
    if example.kind == "sh":
        return ["bash", "-c", f"set -euo pipefail\n{example.code}"]
    return [sys.executable, "-c", example.code]


@pytest.fixture(scope="module")
def started(readme_env):
    """The processes of a batch (see the module doc), by example index; killed if left."""
    procs: dict[int, subprocess.Popen] = {}

    def start(i: int) -> subprocess.Popen:
        if i not in procs:
            procs[i] = subprocess.Popen(_argv(EXAMPLES[i]), env=readme_env, cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, start_new_session=True)
        return procs[i]

    yield start
    for proc in procs.values():
        if proc.poll() is None:  # its test failed or was not run: it and its kernel go
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs(example: Example, readme_env, started, monkeypatch):
    if example.not_run is not None:
        pytest.skip(f"README marks it not run: {example.not_run}")
    index = EXAMPLES.index(example)
    if index in BATCHES:
        mine = [started(i) for i in BATCHES[index]][BATCHES[index].index(index)]
        out, err = mine.communicate(timeout=600)
        proc = subprocess.CompletedProcess(mine.args, mine.returncode, out, err)
    else:
        # exactly the README's environment: what it leaves out is unset here too
        env = {**{k: None for k in os.environ if k not in readme_env}, **readme_env}
        monkeypatch.chdir(ROOT)
        code = _filled(example.code, env)
        if inline(example):
            proc = wb_inline(*shlex.split(code, comments=True)[1:], env=env)
        else:
            proc = subprocess.run(_argv(Example(example.kind, code, example.line, None)),
                                  env=readme_env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=600, check=False)
    assert proc.returncode == 0, (f"README line {example.line} exited {proc.returncode}:\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def test_commands_named_in_the_notebook_folders_readmes_exist_or_are_said_to_come():
    """notebooks/dashboards/README.md once named a dashboard command that did not exist: a
    `workbench CMD` in a folder's README is a command, or the README says it is not built."""
    from workbench.cli import cli

    readmes = sorted((ROOT / "notebooks").rglob("README.md"))
    assert readmes
    for readme in readmes:
        text = " ".join(readme.read_text().split())
        for command in re.findall(r"`workbench ([a-z][\w-]*)", text):
            assert command in cli.commands or re.search(r"not built yet|will serve", text, re.IGNORECASE), \
                f"{readme.relative_to(ROOT)}: `workbench {command}` is no command"


def test_the_demos_duration_is_stated_where_bench_startup_measures_it():
    """README's figure for `make demo` is what `bench/startup.py` times the demo against."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_startup", ROOT / "bench" / "startup.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sentence, low, high = bench.readme_demo_claim(README)
    assert sentence.startswith("The whole demo takes") and 0 < low < high
