"""Real-time pacing of the downlink toward the device.

The stock server sends each TTS sentence's first frames in a burst (5 at once,
then one per 60 ms). A device with a jitter buffer only a few frames deep
would drop most of a burst, so the gateway releases frames at the rate they
play, letting the device's queue run at most `lead` frames ahead of playback
(enough for its prefill). When the upstream falls behind, nothing is made up:
the next frame goes out at once and the clock restarts from it.

The pacer keeps one number: when the device will have played everything sent
so far, assuming it plays from the first frame on.
"""

import asyncio
import time

# The device's default jitter prefill (config jitter_frames). The device sizes
# its ring for this lead when the hello says "paced" (firmware/audio_path.py
# _PACED_LEAD, docs/protocol.md §1.4): raise both together.
LEAD_FRAMES = 3
_MIN_HOLD_S = 1e-4  # shorter holds are float rounding of whole frame times, not worth a sleep


class Pacer:
    def __init__(self, frame_s=0.06, lead=LEAD_FRAMES, clock=time.monotonic, sleep=asyncio.sleep):
        if frame_s <= 0 or lead < 0:
            raise ValueError(f"pacer: frame_s {frame_s!r} must be > 0 and lead {lead!r} >= 0")
        self.frame_s = frame_s
        self.lead_s = lead * frame_s
        self._clock = clock
        self._sleep = sleep
        self._played_at = None  # when the device finishes what was sent so far
        self.waited_s = 0.0  # total time spent holding frames back (for tests and metrics)

    async def wait(self):
        """Return when the next frame may be sent; call once per frame."""
        now = self._clock()
        if self._played_at is None or self._played_at < now:
            self._played_at = now  # idle or late: the device's queue is empty
        hold = self._played_at - now - self.lead_s
        if hold > _MIN_HOLD_S:
            self.waited_s += hold
            await self._sleep(hold)
        self._played_at += self.frame_s
