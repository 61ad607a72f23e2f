# The two commands the README promises, plus the pieces they are made of.
VENV := .venv/bin

.PHONY: setup demo test check bench

setup:
	@scripts/setup

demo: setup
	$(VENV)/python -m tools.sim

test: setup
	$(VENV)/python -m pytest -q host_tests

bench: setup
	$(VENV)/python -m tools.bench
