# One venv per Airflow line, so `make test AIRFLOW_VERSION=2.11.2` never disturbs the 3.3 one.
AIRFLOW_VERSION ?= 3.3.2
PYTHON ?= python3
VENV ?= .venv-$(AIRFLOW_VERSION)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_msghistory example_dags tests benchmarks

demo: $(STAMP)
	$(PY) scripts/demo.py

bench: $(STAMP)
	$(PY) benchmarks/emulator_load.py
	$(PY) benchmarks/triggerer_scale.py
	$(PY) benchmarks/download.py

clean:
	rm -rf .venv-* build *.egg-info
