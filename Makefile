# Visual Lab: `make run` launches the app, `make test` runs the whole suite. Both set everything up first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN ?= torch==2.13.0
SYS_PKGS := xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 \
  libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0 \
  libdbus-1-3 libfontconfig1

.PHONY: run test setup system lint format bench screenshots gallery clean

run: setup
	@if [ -z "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  echo "No display found (DISPLAY is not set): the GUI needs a screen."; \
	  echo "  Try it on a virtual screen: xvfb-run -a $(BIN)/visual-lab"; \
	  echo "  Or work headless: $(BIN)/visual-lab run PANEL --help, $(BIN)/visual-lab panels"; \
	  exit 2; fi
	$(BIN)/visual-lab

test: setup
	$(BIN)/ruff check app panels backends tests bench
	$(BIN)/lint-imports
	@echo "== backend, panel-model and fuzz tests with PySide6/vispy/pyqtgraph blocked from import =="
	VISUAL_LAB_BLOCK_QT=1 $(BIN)/python -m pytest tests/backends tests/models tests/fuzz -p no:pytest-qt -p no:xvfb -q
	@echo "== app and panel tests under Xvfb =="
	$(BIN)/python -m pytest tests/app tests/panels -q

setup: system $(VENV)/.installed

system:
	@missing=""; for p in $(SYS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps "neuraloperator==2.0.0"  # deps: see pyproject (operator learning)
	touch $@

lint:
	$(BIN)/ruff check app panels backends tests bench
	$(BIN)/ruff format --check app panels backends tests bench
	$(BIN)/lint-imports

format:
	$(BIN)/ruff check --fix app panels backends tests bench
	$(BIN)/ruff format app panels backends tests bench

bench: setup
	for f in bench/*.py; do echo "== $$f"; xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python $$f || exit 1; done

screenshots: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python scripts/screenshots.py

gallery: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python scripts/gallery.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
