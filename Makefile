# The two commands a new user runs are `make demo` and `make test`; both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ALLOCATOR := $(VENV)/bin/allocator
APT_PACKAGES := postgresql-15 postgresql-client-15 postgresql-contrib postgresql-plpython3-15 \
	postgresql-15-cron postgresql-15-pgtap postgresql-15-plpgsql-check python3-scipy python3-venv \
	prometheus chromium fonts-dejavu-core
PYTEST_ARGS ?=

.PHONY: setup apt venv test lint demo db-start db-stop clean

setup: apt venv

apt:
	@bash scripts/install-apt.sh $(APT_PACKAGES)

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

lint: venv
	$(VENV)/bin/ruff check bench control tests plpy_functions
	$(VENV)/bin/mypy

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(ALLOCATOR) demo

db-start: setup
	$(ALLOCATOR) db start

db-stop: venv
	$(ALLOCATOR) db stop

clean:
	-$(ALLOCATOR) db stop
	rm -rf $(VENV) .pgdata
