# The app's per-frame path on real firmware objects, without sockets or
# timers: shared by the heap_lock proof (host_tests/scripts/app_heaplock.py)
# and the CPU benchmark (tools/bench/frame_cpu.py). MicroPython only; run in a
# device directory holding config.json and sim.json.
from firmware import protocol
from firmware import state as S
from firmware.app import Device
from firmware.framing import Framer
from wsclient import WebSocket


class Pipeline:
    def __init__(self, version, server_rate=16000):
        dev = self.dev = Device()
        dev.client_id = "c"
        hello = protocol.ServerHello({"type": "hello", "transport": "websocket",
                                      "audio_params": {"sample_rate": server_rate}})
        dev._start_downlink(hello)
        dev.framer = Framer(version)
        dev.pkt_body = memoryview(dev.pkt)[dev.framer.header_len:]
        dev.machine.state = S.SPEAKING
        self.ws = WebSocket(max_message=8192, audio_slots=4, audio_slot_size=len(dev.pkt))
        self.ws._state = 1  # open without a socket: only the synchronous per-frame path runs
        down = server_rate * 60 // 1000 * 2
        frame = bytearray(dev.framer.header_len + down)
        for i in range(dev.framer.header_len, len(frame)):
            frame[i] = (i * 7) & 0xFF
        dev.framer.encode_into(frame, down)
        self.rx = memoryview(frame)
        for i in range(len(dev.pcm_up)):
            dev.pcm_up[i] = i & 0xFF
        self.out_bytes = 0

    def uplink(self):
        self.dev.uplink_frame(self.ws)

    def downlink(self):
        dev = self.dev
        dev._on_audio(self.rx)
        n = dev.jitter.pop_into(dev.pcm_play)
        if n:
            self.out_bytes = len(dev.render(n))
