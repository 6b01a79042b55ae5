# Two commands on a fresh machine:  `make run`  and  `make test`.
# Each creates .venv/ with uv from uv.lock (scripts/uv-run installs uv first if it is missing,
# and picks or fetches a supported Python), then runs in it. `make test-fast` skips every test that
# executes a notebook or a browser.
PYTHON ?=
VENV ?= .venv
export PYTHON VENV
UV_RUN := scripts/uv-run
WEIGHTS ?= imagenet
RUN_ARGS ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=
DOCTOR_ARGS ?=
COLAB_ENV := build/colab-env
COLAB_CONSTRAINTS := constraints/colab.txt

.PHONY: run book test test-fast test-colab lab venv lock clean bench

venv:
	$(UV_RUN) true

# Execute every notebook on the bundled data; executed copies go to build/notebooks/, then the book
# of them to build/book/ (open the index.html it prints).
# WEIGHTS=imagenet (default, downloads 94 MB once), none (random, offline) or a path to the .h5 file.
run:
	TF_CPP_MIN_LOG_LEVEL=2 $(UV_RUN) python scripts/run_notebooks.py --weights "$(WEIGHTS)" $(RUN_ARGS)
	$(UV_RUN) python scripts/build_book.py

# The book alone, from the notebooks `make run` executed (nothing runs again; under a minute).
book:
	$(UV_RUN) python scripts/build_book.py

# pytest-xdist runs one worker per core (at most 4: each holds a ResNet50 and its notebook
# kernels), one test file per worker at a time; TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

test:
	$(UV_RUN) python -m pytest $(XDIST) $(PYTEST_ARGS)

# Package unit tests, structure and lint: no notebook, no browser, no example training.
test-fast:
	$(UV_RUN) python -m pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

# Every notebook at the test parameters on Google Colab's package versions ($(COLAB_CONSTRAINTS)).
test-colab:
	$(UV_RUN) python scripts/colab_check.py --constraints $(COLAB_CONSTRAINTS) --env $(COLAB_ENV)

# Time a head trained on images against one trained on cached features (offline, ~1 min; not a test).
bench:
	$(UV_RUN) python benchmarks/head_training.py $(BENCH_ARGS)

# Check this machine before a workshop, in seconds; changes nothing (see scripts/doctor.py).
.PHONY: doctor
doctor:
	TF_CPP_MIN_LOG_LEVEL=2 $(UV_RUN) python scripts/doctor.py $(DOCTOR_ARGS)

lab:
	$(UV_RUN) jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# Re-pin every package after changing pyproject.toml (needs the registry), and write the same
# pins for pip users to requirements.lock.
lock:
	$(UV_RUN) --uv lock
	$(UV_RUN) --uv export --quiet --format requirements-txt --no-hashes --extra dev --extra hub --no-emit-project -o requirements.lock

clean:
	rm -rf build
