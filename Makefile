# Two commands on a fresh machine:  `make run`  and  `make test`.
# Each creates .venv/ with the pinned packages (requirements.lock) and this package.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WEIGHTS ?= imagenet
RUN_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test lab venv lock clean bench

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

# Execute every notebook on the bundled data; executed copies go to build/notebooks/.
# WEIGHTS=imagenet (default, downloads 94 MB once), none (random, offline) or a path to the .h5 file.
run: venv
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m tlhelpers.runner --weights "$(WEIGHTS)" $(RUN_ARGS)

test: venv
	$(PY) -m pytest

# Time a head trained on images against one trained on cached features (offline, ~1 min; not a test).
bench: venv
	$(PY) benchmarks/head_training.py $(BENCH_ARGS)

# Check this machine before a workshop, in seconds; changes nothing (see tlhelpers/doctor.py).
.PHONY: doctor
doctor: venv
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m tlhelpers.doctor $(DOCTOR_ARGS)

lab: venv
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# Re-pin every package after changing pyproject.toml (needs the registry).
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet -e ".[dev]"
	build/lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

clean:
	rm -rf build
