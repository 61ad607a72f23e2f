# esp for the ESP32 model: flash size of an N16R8 module.
def flash_size():
    return 16 * 1024 * 1024
