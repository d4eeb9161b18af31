# Two commands: `make run` and `make test`. Both create .venv when missing and install the project;
# a stamp keyed on pyproject.toml makes a second call with nothing changed reinstall nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/default.yaml
QT_DEBS := libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 fonts-dejavu-core \
           xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
           libxcb-xinerama0 libxcb-randr0 libxcb-xkb1 libxcb-cursor0 libglib2.0-0
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

.PHONY: run test venv debs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.stamp-run

# numba kernels compiled once after an install (or a change to a kernel's source), with a visible message,
# so the first window does not wait for the compiler
KERNEL_SOURCES := $(shell grep -rl "cache=True" workstation --include=*.py 2>/dev/null)
$(VENV)/.stamp-warm: $(VENV)/.stamp-run $(KERNEL_SOURCES)
	$(BIN)/python -m workstation.warmup
	touch $@

# our modules' bytecode written once after a change (Python would otherwise compile every module from source at
# each launch where bytecode is not written, e.g. with PYTHONDONTWRITEBYTECODE set: ~0.3 s of the first window)
PY_SOURCES := $(shell find workstation -name "*.py" 2>/dev/null) main.py
$(VENV)/.stamp-bytecode: $(VENV)/.stamp-run $(PY_SOURCES)
	$(BIN)/python -m compileall -q -j 0 workstation main.py >/dev/null
	touch $@

venv: $(VENV)/.stamp-run

# Debian packages Qt needs (offscreen and Xvfb); installed only when missing and we are root.
debs:
	@missing=""; for p in $(QT_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; \
	  else echo "note: missing Debian packages (not root, skipped):$$missing"; fi; \
	fi

run: $(VENV)/.stamp-warm $(VENV)/.stamp-bytecode
	$(BIN)/python main.py gui --config $(CONFIG)

# The OpenGL (3-D) tests on a virtual X server, where OpenGL works; then everything offscreen, on two workers
# (PYTEST_WORKERS; 0 runs in this process).
test: debs $(VENV)/.stamp-test $(VENV)/.stamp-warm $(VENV)/.stamp-bytecode
	@if command -v xvfb-run >/dev/null; then \
	  xvfb-run -a -s "-screen 0 1920x1080x24" $(BIN)/python -m pytest -q -m xvfb -p no:cacheprovider; \
	else echo "xvfb-run missing: the 3-D view tests are skipped"; fi
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

bench: $(VENV)/.stamp-test
	$(BIN)/python benchmarks/pricing.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
