# esp32 for the ESP32 model (docs/library/esp32.rst): the chip's sensors and heap.
HEAP_DATA = 4
HEAP_EXEC = 1


def mcu_temperature():
    return 41  # deg C, a warm S3 at idle


def idf_heap_info(capabilities):
    """(total, free, largest free block, minimum free) per heap region."""
    return [(327680, 180000, 110592, 150000)]
