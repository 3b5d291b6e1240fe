# One venv per Airflow line, so `make test AIRFLOW_VERSION=2.11.2` never disturbs the 3.3 one.
AIRFLOW_VERSION ?= 3.3.2
VENDOR ?= qlara
PYTHON ?= python3
VENV ?= .venv-$(AIRFLOW_VERSION)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint bench clean constraints docs release-check redis-server

venv: $(STAMP) redis-server

# The shared-pacing tests and benchmark run a real Redis server: Debian's redis-server (PyPI has none),
# installed with apt-get when missing (as root, or through sudo).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
redis-server:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq redis-server; }

# Pinned constraints per Airflow line (as Airflow publishes its own): resolving boto3/aiobotocore/s3fs
# unconstrained can backtrack for most of an hour. Refresh with `make constraints`.
CONSTRAINTS := constraints/airflow-$(AIRFLOW_VERSION).txt
CONSTRAINT_ARGS := $(if $(wildcard $(CONSTRAINTS)),-c $(CONSTRAINTS),)

$(STAMP): pyproject.toml $(wildcard $(CONSTRAINTS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(CONSTRAINT_ARGS) "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]"
	touch $(STAMP)

constraints: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > $(CONSTRAINTS)

test: $(STAMP) redis-server
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_msghistory example_dags tests benchmarks

demo: $(STAMP)
	$(PY) scripts/demo.py --vendor $(VENDOR)

# Every script in benchmarks/, each printing its figures (they are not tests).
bench: $(STAMP) redis-server
	set -e; for script in benchmarks/*.py; do echo "==> $$script"; $(PY) $$script; done

# The documentation site into site/; --strict: any warning (broken link, missing snippet or reference) fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site

# Build the sdist and wheel, twine check them, install the wheel alone (no dev extras, not editable) into
# a fresh venv on this Airflow line with the constraints, and check that it registers and its parts start.
release-check: $(STAMP)
	PYTHON=$(abspath $(PY)) scripts/check_release.sh $(AIRFLOW_VERSION)

clean:
	rm -rf .venv-* build dist site *.egg-info
