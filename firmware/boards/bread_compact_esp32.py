# A breadboard ESP32 DevKit without PSRAM (ESP32-WROOM-32, 4 MB flash): the
# reference's bread-compact-esp32 wiring (78/xiaozhi-esp32
# main/boards/bread-compact-esp32, simplex I2S): INMP441 mic, MAX98357A amp,
# BOOT button, plain LED on GPIO 2.
#
# Heap budget. With no PSRAM the MicroPython heap lives in internal RAM,
# which Wi-Fi, the TLS buffers and the two I2S DMA rings (16 KB + 11.5 KB,
# firmware/hal/esp32.py) share: expect about 100-160 KB of Python heap after
# Wi-Fi and TLS are up. A turn fits that only with the light settings:
#   audio_format "adpcm" through the edge gateway at 16 kHz (4:1 packets:
#   484-byte frames in the uplink slots and the jitter buffer), the small
#   WebSocket receive buffer, and the .mpy files `tools.dev deploy` installs
#   (never --source: compiling on the chip needs tens of KB more).
# tools/bench/heap.py measures the smallest heap for a turn on the unix port
# and its chip estimate (buffers + objects / 2); docs/benchmarks.md "Memory" has the figures.
NAME = "bread-compact-esp32"
HAL = "esp32"
CHIP = "esp32"

MIC_I2S_ID = 0
MIC_SCK = 26
MIC_WS = 25
MIC_SD = 32
MIC_RATE = 16000
# INMP441 gives 24-bit samples in 32-bit slots; >> 12 is the reference firmware's gain.
MIC_SHIFT = 12

SPK_I2S_ID = 1
SPK_SCK = 14  # BCLK
SPK_WS = 27  # LRC
SPK_SD = 33  # DIN
SPEAKER_RATE = 24000

# A module without PSRAM, flashed with the plain ESP32_GENERIC build: the HAL
# checks nothing at boot (a SPIRAM build on this board is the mistake to avoid).
PSRAM = False

BUTTON_PIN = 0  # BOOT, active low
# Press BOOT within this long after reset to open the Wi-Fi portal. (Held
# through reset, GPIO0 low starts the ROM bootloader instead of MicroPython.)
PORTAL_WINDOW_MS = 2000
LED_PIN = 2  # the DevKit's blue LED, active high
LED_WS2812 = False
LAMP_PIN = 18  # the reference's MCP lamp default: a plain LED + resistor, or a relay input
# Optional SSD1306 128x64 OLED on the reference's pins; absent is fine. Drawing
# it costs ~11 KB of heap (faces, display code, frame buffer) when it is there.
DISPLAY_I2C_ID = 0
DISPLAY_SDA = 4
DISPLAY_SCL = 15
DISPLAY_ADDR = 0x3C


def tools(registry, hal):
    """Board MCP tools: self.lamp.* on LAMP_PIN. Runs at each load of the MCP server."""
    from firmware.boards import lamp, output_pin

    lamp.register(registry, output_pin(LAMP_PIN))
