# Two commands do everything on a fresh machine:
#   make run   - set up (venv, Python packages, Debian packages when root) and open the app
#   make test  - set up and run every test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TEST_WORKERS ?= 2

.PHONY: run test setup system-deps bench clean

setup: $(STAMP)

system-deps:
	@sh scripts/system-deps.sh

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# A real window: on a machine without a display, Xvfb (from `make run`'s Debian packages) provides one.
run: $(STAMP)
	@if [ -z "$$DISPLAY$$WAYLAND_DISPLAY" ] && command -v xvfb-run >/dev/null 2>&1; then \
		echo "no display: running under xvfb-run"; \
		xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m builder gui --template googlenet; \
	else \
		$(PY) -m builder gui --template googlenet; \
	fi

# Two workers share the suite (a test file stays in one worker, in order); every test has a time limit
# (pyproject.toml), and the ten slowest are listed at the end so a slow one is seen when it appears.
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=10

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
