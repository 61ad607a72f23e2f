# upy/ and esp32/ hold assert-style tests that test_upy.py and test_esp32_model.py
# run under micropython; pytest must not import them itself.
collect_ignore = ["upy", "compat", "upy_runner.py", "esp32", "esp32_runner.py"]
