# Two commands for a fresh machine with only Python:
#   make demo   set up and run the example site with demo data (SQLite), http://127.0.0.1:8000/admin/
#   make test   set up and run the whole test suite (SQLite; DATABASE_URL=postgres://... for PostgreSQL)
#
# PYTHON, VENV and DJANGO (an extra requirement such as "Django>=6.0,<6.2", best with its own VENV)
# select the environment; DEMO_LANGUAGE=de loads the demo data in German.

PYTHON ?= python3
VENV ?= .venv
DJANGO ?=
DEMO_LANGUAGE ?=
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e ".[test,example]" $(if $(DJANGO),"$(DJANGO)")
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python example_site/manage.py migrate --noinput
	$(BIN)/python example_site/manage.py load_demo_data $(if $(DEMO_LANGUAGE),--language $(DEMO_LANGUAGE))
	$(BIN)/python example_site/manage.py runserver 127.0.0.1:8000

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf .venv .venv-* example_site/db.sqlite3
