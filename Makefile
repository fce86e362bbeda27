# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow test-all browser-deps lint readme clean

setup: $(STAMP)

# torch is pinned in pyproject.toml (2.13.0, the CPU build the machines have offline).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sslscope train --preset demo --threads 2 --run-dir runs/demo --overwrite

# The default set: under 5 minutes on an idle 2-core machine.
test: $(STAMP)
	$(BIN)/python -m pytest -q

# The long training checks (every method beats its random init, study tables, ...); CI runs
# them after `make test`. Exit status 5 (nothing selected) is not a failure.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

# Headless Chromium for tests/test_browser.py (Debian, as root); without it that test skips.
# Not a prerequisite of `test`, so `make test` works unprivileged. CI (.ci/run) installs it too.
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lint: $(STAMP)
	$(BIN)/ruff check sslscope tests benchmarks

readme: $(STAMP)
	$(BIN)/python scripts/update_readme.py

clean:
	rm -rf $(VENV) runs .pytest_cache
