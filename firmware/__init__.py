# xiaozhi-mpy firmware package. Runs unchanged on ESP32 MicroPython and the unix port.
VERSION = "0.1.0"
APP_NAME = "xiaozhi-mpy"
