# Saves config.json the way the firmware does, but stalls halfway through
# writing the temp file and says so, so a test can kill -9 it mid-write.
import sys
import time

from firmware import config, config_file


def _half(f, text):
    f.write(text[: len(text) // 2])
    f.flush()
    print("MIDWRITE")
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()
    while True:
        time.sleep(1)


cfg = config.load("config.json")
cfg.set("volume", 99)
cfg.set("ws_url", "ws://new.example/xiaozhi/v1/")
config_file._write = _half
cfg.save()
