# What a WebSocket client sends next: masked frames in two lanes. No I/O.
#
#   q = SendQueue(audio_slots=8, audio_slot_size=2048, mask_seed=os.urandom(4))
#   q.put_control(OP_TEXT, b"{...}", n)   # FIFO, never dropped, allocates
#   q.put_audio(pcm, n)                   # preallocated slot; False if the oldest was dropped
#   frame = q.pop()                       # control first, then audio oldest first; None if empty
#
# Audio is a ring of preallocated slots: when every slot waits (the link is
# slower than the microphone), the oldest frame is dropped, because late
# audio is worth less than fresh audio. Control messages (JSON, PONG, CLOSE)
# are never dropped and overtake queued audio. put_audio() and pop() on the
# audio lane allocate nothing.
from micropython import const

import wsframe as F
from wsframe import OP_BINARY

# The payload sits at this offset with its header just in front, so the
# payload is word-aligned for the 32-bit mask loop.
_PAYLOAD_OFF = const(16)


class SendQueue:
    def __init__(self, audio_slots, audio_slot_size, mask_seed):
        self.slot_size = audio_slot_size
        self._slots = [bytearray(_PAYLOAD_OFF + audio_slot_size) for _ in range(audio_slots)]
        self._slot_mvs = [memoryview(s) for s in self._slots]
        self._frame_start = [0] * audio_slots  # header offset per slot
        self._frame_end = [0] * audio_slots
        self._frame_views = [None] * audio_slots  # view of [start:end], made once per size
        self._mask_state = bytearray(mask_seed[:4])
        if not any(self._mask_state):
            self._mask_state[0] = 1  # xorshift state must not be zero
        self._control = []
        self._oldest = 0  # slot index of the oldest queued audio frame
        self.audio_queued = 0
        self.dropped = 0  # audio frames dropped

    def clear(self):
        """Empty both lanes (the connection is gone). dropped is kept for
        the caller to read; it counts on until set back to 0."""
        self._control = []
        self.drop_audio()

    def drop_audio(self):
        """Forget queued audio (a CLOSE is on its way)."""
        self._oldest = self.audio_queued = 0

    @property
    def control_queued(self):
        return len(self._control)

    def put_control(self, op, payload, n):
        """Queue payload[:n] as a masked frame of opcode op."""
        h = F.header_len(n, True)
        frame = bytearray(h + n)
        F.encode_header(frame, 0, op, n, True)
        F.rng_fill(self._mask_state, frame, h - 4)
        F.copy(frame, h, payload, 0, n)
        F.mask(frame, h, n, frame, h - 4)
        self._control.append(frame)

    def put_audio(self, buf, n):
        """Copy buf[:n] into a slot as a masked BINARY frame. Returns False
        when the oldest queued frame had to be dropped to make room."""
        if n > self.slot_size:
            raise ValueError("audio frame too big for slot")
        nslots = len(self._slots)
        kept = True
        if self.audio_queued == nslots:
            self._oldest = self._oldest + 1 if self._oldest + 1 < nslots else 0
            self.audio_queued -= 1
            self.dropped += 1
            kept = False
        i = self._oldest + self.audio_queued
        if i >= nslots:
            i -= nslots
        slot = self._slots[i]
        start = _PAYLOAD_OFF - F.header_len(n, True)
        end = _PAYLOAD_OFF + n
        if self._frame_start[i] != start or self._frame_end[i] != end:
            self._frame_start[i] = start
            self._frame_end[i] = end
            self._frame_views[i] = None  # new bounds: pop() makes a new view
        F.encode_header(slot, start, OP_BINARY, n, True)
        F.rng_fill(self._mask_state, slot, _PAYLOAD_OFF - 4)
        F.copy(slot, _PAYLOAD_OFF, buf, 0, n)
        F.mask(slot, _PAYLOAD_OFF, n, slot, _PAYLOAD_OFF - 4)
        self.audio_queued += 1
        return kept

    def pop(self):
        """The next frame to write, or None. An audio frame's view stays
        valid until put_audio() reuses its slot; write it before that."""
        if self._control:
            return self._control.pop(0)
        if not self.audio_queued:
            return None
        i = self._oldest
        self._oldest = i + 1 if i + 1 < len(self._slots) else 0
        self.audio_queued -= 1
        v = self._frame_views[i]
        if v is None:
            v = self._frame_views[i] = self._slot_mvs[i][self._frame_start[i] : self._frame_end[i]]
        return v
