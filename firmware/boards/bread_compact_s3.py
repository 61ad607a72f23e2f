# The common breadboard ESP32-S3 build (78/xiaozhi-esp32 bread-compact-wifi wiring):
# INMP441 mic (L/R to GND), MAX98357A amp, BOOT button, on-board LED.
NAME = "bread-compact-s3"
HAL = "esp32"
CHIP = "esp32s3"

MIC_I2S_ID = 0
MIC_SCK = 5
MIC_WS = 4
MIC_SD = 6
MIC_RATE = 16000
# INMP441 gives 24-bit samples in 32-bit slots; >> 12 is the reference firmware's gain.
MIC_SHIFT = 12

SPK_I2S_ID = 1
SPK_SCK = 15  # BCLK
SPK_WS = 16  # LRC
SPK_SD = 7  # DIN
SPEAKER_RATE = 24000

# An N16R8 (or N8R8) module, flashed with a SPIRAM build: the HAL says so at
# boot when the heap shows no PSRAM.
PSRAM = True

BUTTON_PIN = 0  # BOOT, active low
# Press BOOT within this long after reset to open the Wi-Fi portal. (Held
# through reset, GPIO0 low starts the ROM bootloader instead of MicroPython.)
PORTAL_WINDOW_MS = 2000
LED_PIN = 48
LED_WS2812 = True  # DevKitC-1 v1.0 style RGB LED on GPIO 48
# Optional SSD1306 128x64 OLED (the reference's wiring); absent is fine.
DISPLAY_I2C_ID = 0
DISPLAY_SDA = 41
DISPLAY_SCL = 42
DISPLAY_ADDR = 0x3C
LAMP_PIN = 18  # the reference breadboard's MCP lamp: a plain LED + resistor, or a relay input


def tools(registry, hal):
    """Board MCP tools: self.lamp.* on LAMP_PIN. Runs at each load of the MCP server."""
    from firmware.boards import lamp, output_pin

    lamp.register(registry, output_pin(LAMP_PIN))
