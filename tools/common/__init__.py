"""Host code shared by the gateway, the mock server and the other host tools:
framing (binary audio frames v1/v2/v3), tokens (signed device tokens), wav
(16-bit PCM WAV files), png (greyscale PNG for the sim display frames). It
imports nothing from the tools that use it."""
