# The two set-up commands of the README: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEMO_DB ?= sqlite:///medsleep.db
DEMO_USERS ?= demo-users.json
DEMO_PASSWORD ?= medsleep-demo
DEMO_DASHBOARD ?= 1

.PHONY: venv demo test lint lock bench clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "medsleep needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# Ingest the bundled fixtures, consolidate, print the reports, then serve the dashboard
# (Ctrl-C to stop; DEMO_DASHBOARD=0 skips it).
demo: venv
	$(BIN)/medsleep ingest fixtures --db $(DEMO_DB)
	$(BIN)/medsleep consolidate --db $(DEMO_DB)
	$(BIN)/medsleep runs --db $(DEMO_DB) --limit 3
	$(BIN)/medsleep audit verify --db $(DEMO_DB)
	@if [ "$(DEMO_DASHBOARD)" = "1" ]; then \
	  printf '%s\n' '$(DEMO_PASSWORD)' | $(BIN)/medsleep users add demo --role admin --users $(DEMO_USERS) --password-stdin --replace && \
	  echo "demo: log in as demo / $(DEMO_PASSWORD)" && \
	  $(BIN)/medsleep dashboard --db $(DEMO_DB) --users $(DEMO_USERS); \
	fi

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict medsleep
	$(BIN)/lint-imports

# Re-pin every dependency after changing pyproject.toml.
lock: venv
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^medsleep' > requirements.lock

clean:
	rm -rf $(VENV) medsleep.db medsleep.db-wal medsleep.db-shm medsleep-archive $(DEMO_USERS)
