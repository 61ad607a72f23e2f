"""Device tools for xiaozhi-mpy: flash MicroPython, deploy the firmware, open the
REPL, follow logs, write the device config, and run the static checks.

    python -m tools.dev --help
"""
