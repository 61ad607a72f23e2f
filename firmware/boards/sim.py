# The simulator board: the sim HAL with WAV files as mic and speaker. Rates
# mirror the breadboard build so resampling is exercised the same way.
NAME = "sim"
HAL = "sim"
CHIP = "unix"

MIC_RATE = 16000
SPEAKER_RATE = 24000
LED_PIN = None
