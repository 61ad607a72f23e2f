# Downlink jitter buffer: a preallocated ring of packets between the network
# reader and the playback task. Slots hold packets as received (compressed:
# an ADPCM frame is a quarter of its PCM) with their lengths, and playback
# decodes each one as it pops it, so the ring costs frames * codec.max_packet.
#
# Behaviour follows the reference decode queue (protocol reference 6.7): it
# holds up to N frames and, when full, drops the NEW frame (no back-pressure
# to the network; the server is expected to pace at real time). On top of that
# it prefills: after a flush or an underrun, pop_into() returns 0 until
# `prefill` frames are queued, so a late packet costs one gap, not a stutter
# on every frame. drain() lets a short utterance's tail play without waiting
# for a prefill that will never come.
# push() and pop_into() run per frame and allocate nothing.
from array import array

from firmware.dsp import copy_bytes


class JitterBuffer:
    def __init__(self, frames, max_packet, prefill):
        if not isinstance(frames, int) or frames < 1:
            raise ValueError("jitter: frames %r must be >= 1" % (frames,))
        if not isinstance(max_packet, int) or max_packet < 1:
            raise ValueError("jitter: max_packet %r must be >= 1" % (max_packet,))
        if not isinstance(prefill, int) or not 0 <= prefill <= frames:
            raise ValueError("jitter: prefill %r not in 0..%d" % (prefill, frames))
        self.frames = frames
        self.max_packet = max_packet
        self.prefill = prefill
        # One buffer per slot, not one ring of frames * max_packet: the device
        # makes them after boot has freed its modules, in a heap with many holes
        # of a few KB and seldom one of 14 KB.
        self._slots = [bytearray(max_packet) for _ in range(frames)]
        self._len = array("i", bytes(4 * frames))
        self._head = 0  # slot of the oldest frame
        self.level = 0  # frames queued
        self.dropped = 0  # frames refused because the ring was full
        self.underruns = 0  # times playback found it empty mid-stream
        self.filling = True  # not playing yet: waiting for `prefill` frames
        self._draining = False

    def push(self, mv, n=None, off=0):
        """Queue a copy of one packet (n bytes of mv from off; default: all
        of it); False (and dropped += 1) when full. Empty packets are ignored.
        Passing off/n instead of slicing mv saves a view allocation per frame:
        the reader hands over the received frame and its payload's place."""
        if not 0 <= off <= len(mv):
            raise ValueError("jitter: off %d not in 0..%d" % (off, len(mv)))
        if n is None:
            n = len(mv) - off
        elif not 0 <= n <= len(mv) - off:
            raise ValueError("jitter: n %d not in 0..%d" % (n, len(mv) - off))
        if n == 0:
            return True
        if n > self.max_packet:
            raise ValueError("jitter: %d-byte packet > %d-byte slot" % (n, self.max_packet))
        if self.level == self.frames:
            self.dropped += 1
            return False
        slot = self._head + self.level
        if slot >= self.frames:
            slot -= self.frames
        copy_bytes(self._slots[slot], 0, mv, off, n)
        self._len[slot] = n
        self.level += 1
        return True

    def pop_into(self, buf):
        """Copy the oldest packet into buf; returns its length, or 0 while
        prefilling or empty (the caller plays silence or waits)."""
        if self.level == 0:
            if self._draining:
                self._draining = False  # a drained stream ended: no underrun
            elif not self.filling:
                self.underruns += 1
            self.filling = True
            return 0
        if self.filling:
            if self.level < self.prefill and not self._draining:
                return 0
            self.filling = False
        slot = self._head
        n = self._len[slot]
        if len(buf) < n:
            raise ValueError("jitter: %d-byte buffer < %d-byte packet" % (len(buf), n))
        copy_bytes(buf, 0, self._slots[slot], 0, n)
        slot += 1
        self._head = 0 if slot == self.frames else slot
        self.level -= 1
        return n

    def drain(self):
        """No more frames for now (tts stop): play what is queued even below
        the prefill mark; running empty afterwards is not an underrun."""
        self._draining = self.level > 0

    def flush(self):
        """Drop everything (tts start, abort) and prefill again."""
        self._head = 0
        self.level = 0
        self._draining = False
        self.filling = True
