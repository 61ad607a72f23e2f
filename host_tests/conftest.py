# upy/ holds assert-style tests run by test_upy.py under both runtimes; pytest
# must not import them itself.
collect_ignore = ["upy", "compat", "upy_runner.py"]
