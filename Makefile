# The two commands the README promises, plus the pieces they are made of.
VENV := .venv/bin

.PHONY: setup demo test check bench

setup:
	@scripts/setup

demo: setup
	$(VENV)/python -m tools.sim

# Four pytest processes (pytest-xdist), even on two cores: the tests mostly wait
# on real time (the firmware's audio clock, servers, timeouts), not on the CPU,
# and none shares a port or a temp path with another. worksteal: an idle worker
# takes queued tests from a busy one, so a few long tests do not end the run alone.
test: setup
	$(VENV)/python -m pytest -q -n 4 --dist worksteal host_tests

bench: setup
	$(VENV)/python -m tools.bench
