# Two commands: `make run` (the whole service on embedded defaults) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# The locks (exact versions with hashes, for Linux x86_64 and Python 3.11) are installed; requirements*.txt are
# their loose input. After editing an input: `make lock`. A stamp named after the lock's hash reinstalls when it
# changes.
RUN_LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
RUN_STAMP := $(VENV)/.run-deps-$(shell sha256sum $(RUN_LOCK) | cut -c1-16)
DEV_STAMP := $(VENV)/.dev-deps-$(shell sha256sum $(DEV_LOCK) | cut -c1-16)
UV_VERSION := 0.9.5
COMPILE = $(BIN)/uv pip compile -q --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28

.PHONY: run test lint bench mutate install install-dev lock token superuser manage messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): $(RUN_LOCK) | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r $(RUN_LOCK)
	rm -f $(VENV)/.run-deps-* && touch $@

$(DEV_STAMP): $(DEV_LOCK) | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r $(DEV_LOCK)
	rm -f $(VENV)/.dev-deps-* $(VENV)/.run-deps-* && touch $@

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

# The translation catalogs (locale/ and diagnosis/locale/: .po to .mo, tools/messages.py, polib from the locks):
# built, never committed, so they cannot go stale. Listed after install/install-dev in run's and test's
# prerequisites, which make builds in that order.
messages: | $(BIN)/python
	$(BIN)/python -m tools.messages --quiet

run: install messages
	$(BIN)/python -m xrayweb.launch

# manage.py on make run's data folder and generated secret key (xrayweb/local.py), on a fresh clone too.
LOCAL := $(BIN)/python -m xrayweb.local
# USER is also the login's environment variable: only a USER= given on the command line names the account.
USER_NAME := $(if $(filter command line,$(origin USER)),$(USER),)

token: install  ## make token USER=north-clinician: that user's REST API token (made once, then the same)
	@test -n "$(USER_NAME)" || { echo "usage: make token USER=<username>"; exit 2; }
	@$(LOCAL) api_token "$(USER_NAME)"

superuser: install  ## make superuser: the platform superuser for /admin/ (asks for a name and password)
	$(LOCAL) createsuperuser

manage: install  ## make manage ARGS="...": any manage.py command on make run's data
	$(LOCAL) $(ARGS)

# The suite runs in TEST_PROCESSES processes (pytest-xdist, a module at a time: tests/parallel.py); 0 runs it in this
# one. With REDIS_URL set, XRAY_TEST_REDIS_URLS names a Redis database for each (.ci/run claims them). Three on this
# 2-core machine, one more than its cores: many tests wait on processes of their own (workers, servers, a browser),
# and with two the cores stood idle 13 % of the run (529 s); with three, 4 % (457 s).
TEST_PROCESSES ?= 3

# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: the suite starts about a hundred Python processes,
# and each would compile the project's modules again (about 0.6 s each), and each pytest would rewrite its plugins'.
test: install-dev messages
	PYTHONDONTWRITEBYTECODE= DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-tests-only-secret} \
		$(BIN)/python -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

# Mutation testing of the modules that guard a promise (tools/mutate.py, [tool.mutmut] in pyproject.toml): per
# module, how many mutants the tests killed and which survived. Hours on 2 cores, so not part of `make test`.
# MUTATE_ARGS="diagnosis/pacs.py" for one module, "--report" to print the last figures again. Each mutant's tests
# reuse one test database (--reuse-db); on PostgreSQL set DATABASE_URL as for the tests.
mutate: install-dev
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-tests-only-secret} PYTEST_ADDOPTS="$${PYTEST_ADDOPTS:---reuse-db}" \
		$(BIN)/python -m tools.mutate $(MUTATE_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SECRET_KEY=lint $(BIN)/mypy .

# Every throughput figure from one run, batched against the per-image path in the same run, since this machine's
# speed drifts (about two minutes on 2 cores; BENCH_ARGS=--quick for about 1 minute).
bench: install
	$(BIN)/python -m tools.bench.services $(BENCH_ARGS)

# Re-resolve the locks from requirements.txt and requirements-dev.txt (needs the package index). The GPU worker's
# lock swaps tensorflow-cpu for Keras 3 on JAX with CUDA (jax[cuda12] brings the CUDA libraries; no TensorFlow).
lock: | $(BIN)/python
	$(BIN)/pip install -q "uv==$(UV_VERSION)"
	$(COMPILE) requirements.txt -o $(RUN_LOCK)
	$(COMPILE) requirements-dev.txt -o $(DEV_LOCK)
	grep -v '^tensorflow-cpu' requirements.txt > $(VENV)/requirements-gpu.txt
	printf '%s\n' 'jax[cuda12]>=0.6' 'keras>=3.10' >> $(VENV)/requirements-gpu.txt
	$(COMPILE) $(VENV)/requirements-gpu.txt -o requirements-gpu.lock
