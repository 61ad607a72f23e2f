# The app's per-frame path on the real Device, opened the way the app opens
# it: bring-up, a button press through the state machine, the channel's real
# connect and hello against a live server (its hello sets the downlink rate),
# and a tts start through the channel's own receive(). Nothing is forced:
# the frames then go through the same calls the capture task and the reader
# make. Shared by the heap_lock proof (host_tests/scripts/app_heaplock.py)
# and the CPU benchmark (tools/bench/frame_cpu.py). MicroPython only; run in
# a device directory holding config.json and sim.json.
import asyncio

from firmware import state as S
from firmware.app import Device
from firmware.framing import Framer
from wsclient import OP_BINARY, OP_TEXT

_OPEN_WAIT_MS = 10000


class Pipeline:
    def __init__(self, version, url):
        self.dev = Device()
        asyncio.run(self._open(version, url))
        dev = self.dev
        # One received downlink frame as the server frames it: a full packet
        # at the negotiated rate behind this session's header.
        framer = Framer(version)
        size = dev.audio.codec_down.max_packet
        frame = bytearray(framer.header_len + size)
        for i in range(framer.header_len, len(frame)):
            frame[i] = (i * 7) & 0xFF
        framer.encode_into(frame, size)
        self.rx = memoryview(frame)
        for i in range(len(dev.audio.pcm_up)):
            dev.audio.pcm_up[i] = i & 0xFF
        self.out_bytes = 0

    async def _open(self, version, url):
        dev = self.dev
        await dev.bring_up()
        dev.settings["ws_url"] = url
        dev.settings["protocol_version"] = version
        dev.apply(dev.ctl.press())  # idle -> connecting: the app's own channel task opens it
        waited = 0
        while dev.ctl.link != S.LINK_UP:
            if dev.ctl.link == S.LINK_DOWN or waited > _OPEN_WAIT_MS:
                raise RuntimeError("pipeline: the channel to %s did not open" % url)
            await asyncio.sleep_ms(10)
            waited += 10
        # What the server says when its reply starts, through the reader's path.
        dev.channel.receive(OP_TEXT, memoryview(b'{"type":"tts","state":"start"}'))
        if not dev.ctl.accepts_audio():
            raise RuntimeError("pipeline: tts start did not make the device speak")

    def uplink(self):
        self.dev.uplink_frame()

    def downlink(self):
        dev = self.dev
        dev.channel.receive(OP_BINARY, self.rx)
        out = dev.audio.next_render()
        if out is not None:
            self.out_bytes = len(out)

    def close(self):
        asyncio.run(self.dev.hang_up())
