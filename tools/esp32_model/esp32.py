# esp32 for the ESP32 model (docs/library/esp32.rst): the S3's temperature sensor.
def mcu_temperature():
    return 41  # deg C, a warm S3 at idle
