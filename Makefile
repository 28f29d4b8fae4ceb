# The two commands: `make demo` (the main job on the embedded defaults) and `make test`
# (the whole suite). Each creates .venv and installs what it needs on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PIP_FLAGS := --disable-pip-version-check --quiet

CHROMIUM := /usr/bin/chromium

.PHONY: demo test lab install install-dev chromium bench lock clean help

help:
	@echo "make demo    run the main job on the embedded defaults (synthetic data, no credentials)"
	@echo "make test    run the whole test suite"
	@echo "make lab     JupyterLab on this project (127.0.0.1, a token, the workbench kernel)"
	@echo "make bench   run the benchmarks in bench/ (ratios recorded in docs/performance.md)"
	@echo "make lock    refresh constraints.txt from the current .venv"
	@echo "make chromium  install Debian's chromium when missing (PNG export, browser tests)"
	@echo "make clean   remove .venv (data/ and runs/ are kept)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), "Python 3.11 or 3.12 is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade pip

$(VENV)/.runtime: pyproject.toml constraints.txt kernels/workbench/kernel.json | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) -c constraints.txt -e .
	$(BIN)/workbench kernel install --sys-prefix
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) install $(PIP_FLAGS) -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

demo: $(VENV)/.runtime
	$(BIN)/workbench demo

lab: $(VENV)/.runtime
	$(BIN)/workbench lab

# Debian's chromium: kaleido's PNG export and the browser tests (playwright) drive it; no
# browser is ever downloaded. Installed when missing and root (CI); otherwise say how.
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium (PNG export, browser tests)"; \
	  (apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y --no-install-recommends chromium)) || exit 1; \
	  [ -x $(CHROMIUM) ] || { echo "make chromium: $(CHROMIUM) still missing" >&2; exit 1; }; \
	else \
	  echo "make chromium: $(CHROMIUM) is missing; run: sudo apt-get install -y --no-install-recommends chromium" >&2; \
	  exit 1; \
	fi

# pytest exits 5 when it collected no tests: that is a failure here, as is any other non-zero.
test: $(VENV)/.dev chromium
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

bench: $(VENV)/.dev
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: $(VENV)/.dev
	$(PIP) freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV)
