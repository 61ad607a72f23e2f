# The device's audio, both ways, in buffers allocated once:
#   uplink    mic PCM -> codec -> packet (room left in front for the channel's header)
#   downlink  received packet -> jitter buffer (packets kept compressed)
#   playback  pop packet -> decode -> resample to the speaker -> volume -> speaker
# The per-frame calls (encode_uplink, push_downlink, next_render) allocate
# nothing, proved under micropython.heap_lock() by host_tests/test_app_heap.py
# on this very class. Buffer sizes come from the codec objects (codec.create:
# max_packet, frame_samples), so a lighter codec means smaller buffers.
# Framing is not here: it belongs to the channel, which differs per transport.
import gc

from micropython import const

from firmware import codec, dsp, log, protocol
from firmware.jitter import JitterBuffer

_TAG = "audio"
FRAME_MS = const(60)
# Jitter ring capacity: what a server sends at once plus room for frames
# that come early. The gateway paces the downlink at real time, at most
# _PACED_LEAD frames ahead (tools/gateway/pacer.py: after a pause it sends
# lead + 1 frames at once, then one per 60 ms), and says so in its hello
# ("paced"). Behind it the ring holds the larger of that and the prefill,
# and _PACED_ROOM more: 240 ms that playback may fall behind in a reply (a
# collection, an MCP load) before a frame is dropped; the pacer does not
# know where playback is, so that room is for the whole reply. A server
# that does not pace (the mock server speaking pcm or adpcm straight to the
# device) sends each sentence's first 5 frames at once,
# then one per 60 ms, so it runs 5 frames further ahead with every sentence:
# _BURST_ROOM keeps a three-sentence reply whole. (The reference queues 40
# Opus packets of ~100 bytes; 40 adpcm frames would be 19 KB of a 160 KB heap.)
_PACED_LEAD = const(3)
_PACED_ROOM = const(4)
_BURST_ROOM = const(16)
# The device's formats (pcm, adpcm) have one packet size per frame, so packets
# that keep coming in shorter than a frame are not what the hello said: the
# stock server echoes our format, then sends Opus (packets of 100-400 B). One
# short packet ends every sentence, so a run of them is the sign. (A codec
# with variable-size packets, such as a native Opus one, needs another test.)
_SHORT_RUN = const(3)


def cannot_decode(fmt):
    """The one line a user sees when the server's audio is not playable here."""
    return ("server sends %s audio, which this device cannot decode: point ws_url/ota_url "
            "at the xiaozhi gateway (python -m tools.gateway)" % fmt)


class AudioPath:
    def __init__(self, fmt, speaker_rate, prefill, volume, headroom):
        """fmt: the uplink (and preferred downlink) format; headroom: bytes
        the channel's largest header needs in front of an uplink payload."""
        self.codec_up = codec.create(fmt, protocol.UPLINK_RATE, FRAME_MS)
        self.pcm_up = bytearray(2 * self.codec_up.frame_samples)  # the capture task reads into this
        self.pkt_up = bytearray(headroom + self.codec_up.max_packet)
        self._up_body = None  # view of pkt_up after this session's header
        self.speaker_rate = speaker_rate
        self.prefill = prefill
        self.gain = dsp.volume_gain(volume)
        # Downlink buffers (and the resampler to the speaker's rate) are made
        # now, for the usual hello: the gateway answers in the device's own
        # format and rate (tools/gateway/proxy.py), so 16 kHz, not the 24 kHz
        # of a stock server's Opus, and paced. Made at the open instead, the 2.9 KB
        # speaker buffer would need one free run of that size in a heap that
        # the session's imports have cut into small holes. A hello with
        # larger frames regrows them; smaller ones reuse them.
        self.codec_down = None
        self.jitter = None
        self.pkt_play = None  # the packet playback pops
        self.pcm_play = None  # ... decoded
        self.pcm_spk = None  # ... resampled to the speaker rate
        self.resampler = None
        self._size_downlink(codec.create(fmt, protocol.UPLINK_RATE, FRAME_MS), True)
        self._views = {}  # byte count -> memoryview, so render results don't allocate views
        self._short = 0  # consecutive short packets (see _SHORT_RUN)
        self.refused = None  # set by push_downlink: why the downlink cannot be played
        # Per-turn figures (see the figures section).
        self.frames_up = 0
        self.frames_down = 0
        self.frames_ignored = 0
        self.frames_played = 0

    def set_volume(self, volume):
        self.gain = dsp.volume_gain(volume)

    # -- uplink ------------------------------------------------------------
    def start_uplink(self, header_len):
        """A session opened whose audio frames carry header_len bytes of header."""
        self._up_body = memoryview(self.pkt_up)[header_len:]

    def encode_uplink(self, pcm=None):
        """Encode the captured pcm_up (or pcm: a pre-roll frame) into pkt_up
        after the header room; returns the payload length. Per frame: no allocation."""
        self.frames_up += 1
        return self.codec_up.encode_into(self.pcm_up if pcm is None else pcm, self._up_body)

    # -- downlink ----------------------------------------------------------
    def start_downlink(self, hello):
        """Set up decoding for a server hello; ValueError (one line, shown to
        the user) when its format cannot be played here."""
        fmt = hello.format or self.codec_up.fmt
        if fmt not in codec.FORMATS:
            raise ValueError(cannot_decode(fmt))
        c = self.codec_down = codec.create(fmt, hello.sample_rate, hello.frame_ms)
        self._size_downlink(c, hello.paced)
        self._views = {}
        self._short = 0
        self.refused = None
        log.info(_TAG, "downlink %s %d Hz %d ms%s -> speaker %d Hz"
                 % (fmt, hello.sample_rate, hello.frame_ms, " paced" if hello.paced else "", self.speaker_rate))

    def _size_downlink(self, c, paced):
        if paced:
            frames = max(self.prefill, _PACED_LEAD + 1) + _PACED_ROOM
        else:
            frames = self.prefill + _BURST_ROOM
        j = self.jitter
        if j is None or j.max_packet < c.max_packet or j.frames < frames:
            self.jitter = self.pkt_play = None
            gc.collect()  # the old ring goes before the new one is made
            self.jitter = JitterBuffer(frames, c.max_packet, self.prefill)
            self.pkt_play = bytearray(c.max_packet)
        pcm_bytes = 2 * c.frame_samples
        if self.pcm_play is None or len(self.pcm_play) < pcm_bytes:
            self.pcm_play = bytearray(pcm_bytes)
        r = self.resampler
        if c.sample_rate == self.speaker_rate:
            self.resampler = None
        elif r is not None and r.in_rate == c.sample_rate and r.max_in_samples >= c.frame_samples:
            r.reset()  # the usual hello: the one made at start-up
        else:
            r = self.resampler = dsp.Resampler(c.sample_rate, self.speaker_rate, c.frame_samples)
            spk_bytes = 2 * r.max_out(c.frame_samples)
            if self.pcm_spk is None or len(self.pcm_spk) < spk_bytes:
                self.pcm_spk = bytearray(spk_bytes)

    def push_downlink(self, mv, n):
        """Queue one received packet (mv[0:n]) for playback. False when it
        was refused; `refused` then says why if the stream is unplayable.
        Per frame: no allocation."""
        c = self.codec_down
        if n < c.max_packet:
            self._short += 1
            if self._short >= _SHORT_RUN:
                self.refused = cannot_decode("opus")
                return False
        else:
            self._short = 0
        if n > c.max_packet:
            log.warn(_TAG, "dropped downlink packet: %d bytes > %d" % (n, c.max_packet))
            return False
        self.frames_down += 1
        return self.jitter.push(mv, n)

    def ignore_downlink(self):
        """A packet that came while nothing plays (docs/protocol.md §2.3)."""
        self.frames_ignored += 1

    # -- playback ----------------------------------------------------------
    def next_render(self):
        """Pop, decode, resample and apply the volume to the next packet;
        returns the view to write to the speaker, or None when there is
        nothing to play now. No allocation once each output size has a view."""
        while True:
            n = self.jitter.pop_into(self.pkt_play)
            if n == 0:
                return None
            try:
                m = self.codec_down.decode_into(self.pkt_play, self.pcm_play, 0, n)
            except ValueError as e:  # e.g. an odd-length pcm packet: skip to the next one
                log.warn(_TAG, "dropped downlink packet: %s" % e)
                continue
            self.frames_played += 1
            return self._render(m >> 1)

    def _render(self, samples):
        if self.resampler is None:
            buf, out = self.pcm_play, samples
        else:
            buf = self.pcm_spk
            out = self.resampler.process(self.pcm_play, samples, buf)
        dsp.apply_gain(buf, out, self.gain)
        key = out if buf is self.pcm_spk else -out
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = memoryview(buf)[: out * 2]
        return view

    def queued(self):
        return self.jitter.level > 0

    def flush(self):
        """Drop what is queued (a new reply, an abort, a closed channel)."""
        self.jitter.flush()
        self.jitter.underruns = 0
        self.frames_played = 0  # a cut-short reply's frames don't count toward the next
        if self.resampler is not None:
            self.resampler.reset()
        if self.codec_down is not None:
            self.codec_down.reset()  # a new stream: a stateful decoder starts clean (docs/protocol.md §6.3)

    def drain(self):
        """The reply is complete: play the tail even below the prefill mark."""
        self.jitter.drain()

    # -- figures (per turn: each call starts counting afresh) --------------
    def uplink_figures(self):
        d = {"dir": "up", "frames": self.frames_up}
        self.frames_up = 0
        return d

    def downlink_figures(self):
        d = {"dir": "down", "frames": self.frames_down, "dropped": self.jitter.dropped,
             "ignored": self.frames_ignored}
        self.jitter.dropped = 0
        self.frames_down = self.frames_ignored = 0
        return d

    def playback_figures(self):
        d = {"dir": "play", "frames": self.frames_played, "underruns": self.jitter.underruns}
        self.jitter.underruns = 0
        self.frames_played = 0
        return d
