# The two commands of the quick start: `make run` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

export UNIFIED_ASSETS_HOME ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(UNIFIED_ASSETS_HOME)/dagster_home

.PHONY: setup run test test-fast lint ui serve bench clean stack stack-down

# pip's own notices go to .venv/install.log; they are shown only when the install fails.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the project and its extras into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 \
		|| (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install -e '.[dev,postgres,dask,mlflow]' >> $(VENV)/install.log 2>&1 \
		|| (cat $(VENV)/install.log; exit 1)
	touch $(STAMP)

setup: $(STAMP)

## Land every day of 2013 and build the whole graph over it in one Dagster run: raw, warehouse,
## marts, features, each model trained, gated and deployed, its predictions and the monitoring;
## print a summary.
run: setup
	$(BIN)/unified-assets build --through 2013-12-31

# pytest-xdist: the tests on two workers (the machines have two cores), a module at a time
# (--dist loadfile): a module's server, cluster or template home is built once, on one worker.
# Modules are handed out in collection order (system/ first, the slowest among them early).
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

## Lint, then every test: the unit tier (lib/) and the system tier (runs, sensors, the service,
## the UI in a browser, PostgreSQL, Dask, killed and concurrent processes, the command line).
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest $(XDIST)

## The unit tier alone (unified_assets_tests/unit/: lib/, no Dagster run, no other process),
## for after every change.
test-fast: setup
	$(BIN)/pytest $(XDIST) unified_assets_tests/unit

lint: setup
	$(BIN)/ruff check .

## The Dagster UI on http://127.0.0.1:3000 over the same home folder and instance.
ui: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

## The prediction service on http://127.0.0.1:8080 (docs/serving.md): every promoted model.
serve: setup
	$(BIN)/unified-assets serve --host 127.0.0.1 --port 8080

## Benchmarks: the pipeline side by side with the same SQL run bare.
bench: setup
	$(BIN)/python bench/bench_foundation.py
	$(BIN)/python bench/bench_ml.py
	$(BIN)/python bench/bench_dagster_costs.py
	$(BIN)/python bench/bench_replay_floor.py

clean:
	rm -rf $(VENV)

# The container stack (deploy/compose.yaml; docs/integrations.md#containers): `docker compose`
# when the Docker client has it, else Debian's docker-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
STACK := $(COMPOSE) -f deploy/compose.yaml -p unified-assets

## Build the images (the base from Debian's packages) and start PostgreSQL, the Dagster UI
## (127.0.0.1:3000), the daemon and the prediction service (127.0.0.1:8080) on one home volume.
stack:
	deploy/docker/base-image.sh
	$(STACK) build
	$(STACK) up -d
	python3 deploy/docker/check_stack.py

## Stop the stack (its volumes stay: `$(STACK) down -v` removes them too).
stack-down:
	$(STACK) down

