# Everything a fresh machine needs: `make demo` and `make test` create the virtualenv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# The first start of Prefect's ephemeral server migrates its database: slower than the 20 s default allows.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres,mpp,dask,projectserver]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pmo demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench finance --lines 1000000

clean:
	rm -rf $(VENV) demo_data *.db *.db-wal *.db-shm
