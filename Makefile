# Every target bootstraps .venv itself: a fresh clone needs only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
LOCK_VENV := .lock-venv

.PHONY: demo test soak bench lint e2e clean lock

# Installs exactly the locked set (pip and setuptools included), then this package without
# resolving anything: every install of one commit gets the same dependencies.
# The native reader (npr_pipeline/intake/native) compiles against the system's libxml2: its
# headers come from Debian's libxml2-dev where the machine lacks them (gcc is on every machine).
$(STAMP): pyproject.toml $(LOCK) setup.py npr_pipeline/intake/native/_native.c
	command -v xml2-config >/dev/null || (apt-get update -qq && apt-get install -y -qq libxml2-dev)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Deliberate: resolve pyproject.toml's ranges (dev extras included) afresh in a scratch venv and
# rewrite the lock. Review the diff (docs/audit.md), run `make test`, commit both files.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip setuptools
	$(LOCK_VENV)/bin/pip install --quiet -e '.[dev]'
	{ echo "# The locked dependencies of npr-pipeline (dev extras included), installed by make."; \
	  echo "# Do not edit: regenerate with 'make lock' (README, 'Locked dependencies')."; \
	  $(LOCK_VENV)/bin/pip freeze --all --exclude-editable; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)

demo: $(STAMP)
	$(BIN)/npr demo

# Both cores, a module per worker at a time: some modules build one HOME in a module fixture
# and their tests follow each other through it (runs, then versions, then the report).
# Temporary folders (~2.2 GB and ~50,000 files a make test) go to TESTTMP: a folder of this
# checkout on tmpfs where /dev/shm has 8 GiB free, else .pytest-tmp in the checkout. On the
# root disk (ext4 mounted with discard) creating and fsyncing the suite's files cost 5-8 % of
# make test's wall (532 s against 506 s back to back, tests/README.md "Session 17"). Never
# pytest's default under /tmp: each session there removes the oldest run of every checkout on
# the machine, and an unlink on that disk waits ~2.3 ms (182 s of one session's 510 profiled).
# Each target replaces its previous run's folder at its start and removes it (and TESTTMP once
# empty) when it passes; a failed run's stays for a look (on tmpfs until the next run or a
# reboot).
TESTTMP := $(shell free=$$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $$4}'); \
	if [ "$${free:-0}" -ge 8388608 ] && [ -w /dev/shm ]; then \
	echo /dev/shm/npr-pipeline-$$(id -u)-$$(pwd | cksum | cut -d' ' -f1); else echo .pytest-tmp; fi)

test: $(STAMP)
	mkdir -p $(TESTTMP)
	$(BIN)/pytest -n 2 --dist loadscope --basetemp=$(TESTTMP)/test
	rm -rf $(TESTTMP)/test
	rmdir $(TESTTMP) 2>/dev/null || true

# Both cores as in make test: the soak's modules are independent (each builds its own HOMEs),
# and one process took ~18 minutes on a slow machine.
soak: $(STAMP)
	mkdir -p $(TESTTMP)
	NPR_SOAK=1 $(BIN)/pytest -m soak -n 2 --dist loadscope --basetemp=$(TESTTMP)/soak
	rm -rf $(TESTTMP)/soak
	rmdir $(TESTTMP) 2>/dev/null || true

# The floors are libxml2's own xmllint (Debian's libxml2-utils) and GNU time measures every
# contender: a new machine has neither, and a floor that did not run must not read as 0 s.
bench: $(STAMP)
	command -v xmllint >/dev/null || (apt-get update -qq && apt-get install -y -qq libxml2-utils)
	test -x /usr/bin/time || (apt-get update -qq && apt-get install -y -qq time)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.quality_bench
	$(BIN)/python -m benchmarks.gate_bench
	$(BIN)/python -m benchmarks.reader_floor --national --rounds 5  # the national April (quality_bench made it)
	$(BIN)/python -m benchmarks.daily_bench  # 2,000 units; a national day: --units 65000

e2e: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m e2e.check_reports

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(LOCK_VENV) data/home .pytest-tmp $(TESTTMP)
