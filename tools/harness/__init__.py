"""Code that tests (host_tests/) and benchmarks (tools/bench/) share: running
the firmware and MicroPython scripts on this host and reading what they print.

Imports point one way: product code (firmware/, lib/, tools/*) <- this
harness <- tests and benchmarks. Nothing in firmware/ or tools/ imports
host_tests, and nothing here imports a test or a benchmark.
"""
