# The application: loads config and the board, builds the HAL, and runs the
# tasks (button, capture, playback, channel, watchdog) around the state
# machine. Every input goes through state.Controller; this module only carries
# out the actions it returns.
import asyncio
import gc
import sys
import time

from micropython import const

from firmware import APP_NAME, VERSION, boards, clock, codec, config, dsp, hal, log, protocol
from firmware import state as S
from firmware.framing import Framer
from firmware.jitter import JitterBuffer
from firmware.session import Session, SessionError
from wsclient import WebSocket

_TAG = "app"
_FRAME_MS = const(60)
_UP_RATE = const(16000)
_UP_BYTES = const(1920)  # 960 samples of s16 per 60 ms at 16 kHz
_MAX_DOWN_BYTES = const(5760)  # 60 ms at 48 kHz: the largest downlink frame we accept
# The stock server sends each sentence's first 5 frames at once, then paces at
# real time, so the queue needs room for a few bursts on top of the prefill.
# 24 frames of 60 ms at 24 kHz is 69 KB (the reference queues 40).
_JITTER_CAPACITY = const(24)
_UP_SLOTS = const(16)
_SILENCE_LIMIT_MS = const(60000)  # 3 missed server pings (every 20 s) = dead link
_BACKOFF_MIN_MS = const(1000)
# Opens happen on a press, so a person never waits more than a few seconds;
# a script pressing in a loop against a refusing server still backs off.
_BACKOFF_MAX_MS = const(5000)
_LEVELS = {"debug": log.DEBUG, "info": log.INFO, "warn": log.WARN, "error": log.ERROR}


class Device:
    def __init__(self, config_path=config.PATH):
        self.cfg = config.load(config_path)
        log.level = _LEVELS[self.cfg.get("log_level")]
        log.info(_TAG, "%s %s, config %s" % (APP_NAME, VERSION, self.cfg.redacted()))
        self.board = boards.load(self.cfg.get("board"))
        if self.board.HAL == "esp32" and sys.platform != "esp32":
            # A config reset to defaults names the real board; off-chip only the sim can run.
            log.warn(_TAG, "board %s needs an ESP32; using the sim board on %s" % (self.board.NAME, sys.platform))
            self.board = boards.load("sim")
        self.hal = hal.load(self.board)
        self.device_id = protocol.format_mac(self.hal.mac())
        self.client_id = None  # set by startup, which creates it on first boot
        self.machine = S.Machine()
        self.ctl = S.Controller(self.machine, self.cfg.get("button_mode"), self.cfg.get("listen_mode"))
        if self.cfg.get("listen_mode") == "realtime":
            log.warn(_TAG, "realtime mode keeps the mic open while speaking; without AEC expect echo")
        self.session = None  # the open Session, while there is one
        self.session_id = ""  # kept across sessions: a hello without one keeps the last (spec §1.4)
        # One WebSocket for the device's life: its 64 KB message buffer and audio
        # slots are allocated once instead of fragmenting the heap every turn.
        self.ws = None
        self._channel_lock = asyncio.Lock()
        self.failures = 0  # consecutive failed opens, for backoff
        self.settings = None  # ws_url / ws_token / protocol_version in use
        self.wifi = None  # firmware.wifi.WifiManager when the HAL has Wi-Fi

        # Uplink: preallocated once; the capture task reuses these every frame.
        self.codec_up = codec.create(self.cfg.get("audio_format"), _UP_RATE, _FRAME_MS)
        self.pcm_up = bytearray(_UP_BYTES)
        self.pkt = bytearray(16 + self.codec_up.max_packet)  # 16 = largest framing header
        # 16 audio slots hold ~1 s of PCM uplink for a slow link (the reference
        # queues 40 Opus packets, but those are ~100 bytes, not 1920).
        self.ws = WebSocket(max_message=65536, audio_slots=_UP_SLOTS, audio_slot_size=len(self.pkt))
        self.framer = None
        self.pkt_body = None
        self.mic_on = False
        self._mic_flag = asyncio.Event()
        self.frames_up = 0

        # Downlink: sized for the largest frame; rates are set per session.
        self.jitter = None
        self._jitter_for(2880)  # 60 ms at the default 24 kHz; regrown if a server sends more
        self.pcm_down = bytearray(_MAX_DOWN_BYTES)  # the reader decodes into this
        self.pcm_play = bytearray(_MAX_DOWN_BYTES)  # playback pops into this meanwhile
        # Resampled output: one frame at the speaker's rate, up to 120 ms at 24 kHz (+1 sample of phase).
        self.pcm_spk = bytearray(_MAX_DOWN_BYTES * 2)
        self._spk_views = {}  # byte count -> memoryview, so writes don't allocate views
        self.codec_down = None
        self.resampler = None
        self.gain = dsp.volume_gain(self.cfg.get("volume"))
        self._audio_flag = asyncio.Event()
        self.stream_done = False  # tts stop seen: playback reports when it has drained
        self.played = 0  # frames of the current reply written to the speaker
        self.frames_down = self.frames_ignored = 0
        self.mcp = self._mcp_server()

    # -- identity ------------------------------------------------------------
    def _token(self):
        secret = self.cfg.get("device_secret")
        if not secret:
            return self.settings["ws_token"]
        from firmware import auth

        ts = auth.token_ts()
        if not auth.clock_ok(ts):
            log.warn(_TAG, "clock not set; a signed token will be refused")
        return auth.mint_token(secret, self.client_id, self.device_id, ts)

    def _mcp_server(self):
        from firmware import default_tools, mcp, mcp_tools

        registry = mcp_tools.Registry()
        ctx = default_tools.Context(self.hal, self.cfg, self, self._schedule_reboot, VERSION)
        default_tools.register_defaults(registry, ctx)
        return mcp.McpServer(registry, self.board.NAME, VERSION)

    def _schedule_reboot(self):
        asyncio.create_task(self._reboot())

    # -- volume (MCP set_volume and config) ------------------------------------
    def set_volume(self, volume):
        self.gain = dsp.volume_gain(volume)

    # -- actions ---------------------------------------------------------------
    def apply(self, actions):
        for act, arg in actions:
            if act == S.OPEN:
                asyncio.create_task(self._channel())
            elif act == S.CLOSE:
                if self.session:
                    asyncio.create_task(self.session.close())
            elif act == S.LISTEN_START:
                self._send(protocol.listen_start(self._sid(), arg), "listen", {"state": "start", "mode": arg})
            elif act == S.LISTEN_STOP:
                self._send(protocol.listen_stop(self._sid()), "listen", {"state": "stop"})
            elif act == S.ABORT:
                self._send(protocol.abort(self._sid(), arg), "abort", {"reason": arg})
            elif act == S.MIC_ON:
                self.mic_on = True
                self._mic_flag.set()
            elif act == S.MIC_OFF:
                if self.mic_on:
                    log.event("audio", {"dir": "up", "frames": self.frames_up})
                self.mic_on = False
                self.frames_up = 0
            elif act == S.FLUSH_PLAYBACK:
                self.jitter.flush()
                self.stream_done = False
                self.played = 0  # a cut-short reply's frames don't count toward the next
            elif act == S.REBOOT:
                self._schedule_reboot()

    def _sid(self):
        return self.session.session_id if self.session else ""

    def _send(self, text, kind, details):
        if self.session is None:
            log.warn(_TAG, "no channel; %s not sent" % kind)
            return
        self.session.send(text)
        details["type"] = kind
        log.event("tx", details)

    async def _reboot(self):
        await asyncio.sleep_ms(1000)  # let the reply and close go out first (spec §2.2)
        self.hal.reboot()

    # -- the channel -------------------------------------------------------------
    async def _channel(self):
        # One channel at a time: a new one waits until the last has fully
        # closed, because they share the WebSocket and its buffers.
        async with self._channel_lock:
            await self._run_channel()

    async def _run_channel(self):
        """Open the channel, run its reader, and report how it ended. Every way
        out ends in ctl.closed(): a failed open must never strand 'connecting'."""
        if self.failures:
            delay = min(_BACKOFF_MAX_MS, _BACKOFF_MIN_MS << min(self.failures - 1, 5))
            delay = delay // 2 + self.hal.random_bytes(1)[0] * delay // 512  # 50-100% jitter
            log.info(_TAG, "retrying in %d ms (%d failures)" % (delay, self.failures))
            await clock.sleep_ms(delay)
        if self.wifi is not None and not self.wifi.connected:
            self.failures += 1
            log.error(_TAG, "no Wi-Fi; not connecting")
            log.event("error", {"reason": "no Wi-Fi"})
            self.apply(self.ctl.closed())
            return
        if self.wifi is not None:
            self.wifi.set_power_save(False)  # spec §11.13: no modem sleep during a session
        sess = Session(self.ws, self.session_id)
        version = self.settings["protocol_version"]
        try:
            try:
                hello = await sess.open(
                    self.settings["ws_url"],
                    protocol.headers(self._token(), version, self.device_id, self.client_id),
                    protocol.client_hello(version, self.cfg.get("audio_format")),
                    cadata=self._cadata(),
                    verify=self.cfg.get("tls_verify"),
                )
                self._start_downlink(hello)
            except Exception as e:  # SessionError, a bad CA file or secret, a hello we can't play, MemoryError
                self.failures += 1
                reason = str(e) if isinstance(e, SessionError) else "%s: %s" % (type(e).__name__, e)
                log.error(_TAG, reason)
                log.event("error", {"reason": reason})
                return
            self.failures = 0
            self.session_id = sess.session_id
            self.framer = Framer(version)
            self.pkt_body = memoryview(self.pkt)[self.framer.header_len:]
            self.session = sess
            self.apply(self.ctl.opened())
            reason = await sess.read(self._on_json, self._on_audio)
        finally:
            await sess.close()  # idempotent; whatever ended the session, the socket goes
            self.session = None
            if self.wifi is not None:
                self.wifi.set_power_save(True)
            self.apply(self.ctl.closed())
        # Reported only now, once the device is idle: a press that follows the
        # report must open a new channel, not barge into the dead one.
        log.info(_TAG, "channel closed: %s" % reason)
        log.event("closed", {"reason": reason})
        self._report_downlink()

    def _cadata(self):
        path = self.cfg.get("ca_file")
        if not path:
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise OSError("CA file %s unreadable: %s" % (path, e))

    def _jitter_for(self, frame_bytes):
        if self.jitter is None or self.jitter.frame_bytes < frame_bytes:
            self.jitter = None
            gc.collect()
            self.jitter = JitterBuffer(_JITTER_CAPACITY, frame_bytes, self.cfg.get("jitter_frames"))

    def _start_downlink(self, hello):
        fmt = hello.format or self.cfg.get("audio_format")
        self.codec_down = codec.create(fmt, hello.sample_rate, hello.frame_ms)
        frame_bytes = hello.sample_rate * hello.frame_ms // 1000 * 2
        if frame_bytes > _MAX_DOWN_BYTES:
            raise ValueError("server downlink frames of %d ms at %d Hz are too large"
                             % (hello.frame_ms, hello.sample_rate))
        self._jitter_for(frame_bytes)
        spk = self.board.SPEAKER_RATE
        self.resampler = None
        if hello.sample_rate != spk:
            self.resampler = dsp.Resampler(hello.sample_rate, spk, _MAX_DOWN_BYTES // 2)
        log.info(_TAG, "downlink %s %d Hz %d ms -> speaker %d Hz"
                 % (fmt, hello.sample_rate, hello.frame_ms, spk))

    # -- incoming ------------------------------------------------------------------
    def _on_json(self, msg, size):
        t = msg["type"]
        if t == "tts":
            st = msg.get("state")
            log.event("rx", {"type": "tts", "state": st, "text": msg.get("text")})
            if st == "start":
                self.apply(self.ctl.tts_start())
            elif st == "stop":
                if self.ctl.accepts_audio():  # not the stock server's second stop after an abort
                    self.stream_done = True
                    self.jitter.drain()  # play the tail even if it is shorter than the prefill
                    self._report_downlink()
                    self._audio_flag.set()  # playback may already be empty: let it notice
                self.apply(self.ctl.tts_stop())
            elif st == "sentence_start":
                log.info(_TAG, "assistant: %s" % msg.get("text"))
        elif t == "stt":
            log.info(_TAG, "user: %s" % msg.get("text"))
            log.event("rx", {"type": "stt", "text": msg.get("text")})
        elif t == "llm":
            log.event("rx", {"type": "llm", "emotion": msg.get("emotion")})
        elif t == "mcp":
            asyncio.create_task(self._mcp(msg.get("payload"), size))
        elif t == "system":
            log.event("rx", {"type": "system", "command": msg.get("command")})
            log.info(_TAG, "system command %r" % msg.get("command"))
            self.apply(self.ctl.system(msg.get("command")))
        elif t == "alert":
            log.warn(_TAG, "alert [%s] %s" % (msg.get("status"), msg.get("message")))
            log.event("rx", {"type": "alert", "status": msg.get("status"),
                             "message": msg.get("message"), "emotion": msg.get("emotion")})
        elif t == "goodbye":
            # MQTT-style end of session (spec §4.5); a WebSocket server may send it too.
            log.event("rx", {"type": "goodbye"})
            if msg.get("session_id") in (None, self._sid()) and self.session:
                asyncio.create_task(self.session.close())
        elif t == "hello":
            log.warn(_TAG, "ignoring a second server hello")
        else:
            log.info(_TAG, "ignoring unknown message type %r" % t)
            log.event("rx", {"type": t, "ignored": True})

    async def _mcp(self, payload, size):
        method = payload.get("method") if isinstance(payload, dict) else None
        log.event("rx", {"type": "mcp", "method": method})
        reply = await self.mcp.handle(payload, size)
        if reply is not None:
            self._send(protocol.mcp(self._sid(), reply), "mcp", {"id": reply.get("id")})

    def _on_audio(self, mv):
        """One binary frame from the server. Runs 16.7 times a second: no allocation."""
        if not self.ctl.accepts_audio():
            self.frames_ignored += 1
            return
        try:
            off = self.framer.decode(mv)
            n = self.codec_down.decode_into(mv, self.pcm_down, off, self.framer.payload_len)
        except ValueError as e:
            log.warn(_TAG, "dropped downlink frame: %s" % e)
            return
        self.frames_down += 1
        self.jitter.push(self.pcm_down, n)
        self._audio_flag.set()

    def _report_downlink(self):
        if self.frames_down or self.frames_ignored:
            log.event("audio", {"dir": "down", "frames": self.frames_down,
                                "dropped": self.jitter.dropped, "ignored": self.frames_ignored})
        self.frames_down = self.frames_ignored = self.jitter.dropped = 0

    # -- tasks -----------------------------------------------------------------------
    async def _buttons(self):
        while True:
            ev = await self.hal.button.event()
            log.event("button", ev)
            try:
                self.apply(self.ctl.press() if ev == "press" else self.ctl.release())
            except Exception as e:  # a bug behind one press must not leave the device deaf
                log.exc(_TAG, "button %s failed" % ev, e)

    async def _capture(self):
        """Mic -> codec -> framing -> writer queue, one 60 ms frame at a time."""
        mic = self.hal.mic
        while True:
            while not self.mic_on:
                self._mic_flag.clear()
                await self._mic_flag.wait()
            mic.start()
            while self.mic_on:
                await mic.readinto(self.pcm_up)
                sess = self.session
                if not self.mic_on or sess is None:
                    break
                self.uplink_frame(sess.ws)
            mic.stop()

    def uplink_frame(self, ws):
        """Encode, frame and queue the captured frame. No allocation."""
        n = self.codec_up.encode_into(self.pcm_up, self.pkt_body)
        ws.send_binary(self.pkt, self.framer.encode_into(self.pkt, n))
        self.frames_up += 1

    async def _playback(self):
        """Jitter buffer -> resample -> volume -> speaker."""
        spk = self.hal.speaker
        while True:
            n = self.jitter.pop_into(self.pcm_play)
            if n == 0:
                if self.stream_done and self.jitter.level == 0:
                    # The reply has ended and all of it has played.
                    self.stream_done = False
                    spk.stop()
                    log.event("audio", {"dir": "play", "frames": self.played,
                                        "underruns": self.jitter.underruns})
                    self.played = 0
                    self.apply(self.ctl.drained())
                self._audio_flag.clear()
                await self._audio_flag.wait()
                continue
            if not self.played:
                spk.start()
            self.played += 1
            await spk.write(self.render(n))

    def render(self, n):
        """Resample and apply the volume to n bytes popped into pcm_play; returns
        the view to write. No allocation once each output size has a view."""
        samples = n >> 1
        if self.resampler is None:
            buf, out = self.pcm_play, samples
        else:
            buf = self.pcm_spk
            out = self.resampler.process(self.pcm_play, samples, buf)
        dsp.apply_gain(buf, out, self.gain)
        key = out if buf is self.pcm_spk else -out
        view = self._spk_views.get(key)
        if view is None:
            view = self._spk_views[key] = memoryview(buf)[: out * 2]
        return view

    async def _watchdog(self):
        """Spec §1.6 leaves dead links to the server; a device on flaky Wi-Fi
        needs its own read deadline. The stock server pings every 20 s."""
        while True:
            await asyncio.sleep_ms(5000)  # real time: the server's pings are real time too
            sess = self.session
            if sess is not None and time.ticks_diff(time.ticks_ms(), sess.ws.last_rx) > _SILENCE_LIMIT_MS:
                log.warn(_TAG, "server silent for %d ms; closing" % _SILENCE_LIMIT_MS)
                await sess.close()

    # -- start -----------------------------------------------------------------------
    async def _bring_up(self):
        # Wi-Fi (or the portal), OTA check and activation, URL precedence.
        from firmware import startup

        settings = await startup.bring_up(self.cfg, self.hal, self.machine)
        self.client_id = self.cfg.get("client_id")
        self.wifi = settings.pop("wifi")
        self.settings = settings
        if self.wifi is not None:
            asyncio.create_task(self.wifi.supervise())
            asyncio.create_task(self._wifi_watch())

    async def _wifi_watch(self):
        """On a Wi-Fi drop, close the channel (its socket is dead); the next
        turn opens a fresh one once the link is back."""
        while True:
            await self.wifi.changed.wait()
            self.wifi.changed.clear()
            if not self.wifi.connected and self.session is not None:
                log.warn(_TAG, "Wi-Fi lost; closing the channel")
                await self.session.close()

    async def run(self):
        # The HAL runs from the start: the button must work during boot (a
        # press cuts OTA retries short) and the simulator's control lines too.
        shutdown = asyncio.create_task(self.hal.until_shutdown())
        await self._bring_up()
        gc.collect()
        # Small, regular collections instead of one long pause mid-turn.
        gc.threshold(gc.mem_free() // 4 + gc.mem_alloc())
        log.event("ready", {"device_id": self.device_id, "free": gc.mem_free()})
        for task in (self._buttons, self._capture, self._playback, self._watchdog):
            asyncio.create_task(task())
        await shutdown
        if self.session:
            await self.session.close()
        return self.hal.exit_code


def main(config_path=config.PATH):
    """Run the device. On a board, any crash is logged and followed by a reset
    a few seconds later: a headless device must come back by itself."""
    try:
        return asyncio.run(Device(config_path).run())
    except Exception as e:
        log.exc(_TAG, "fatal", e)
        if sys.platform != "esp32":
            raise  # the simulator and tests must see the crash
        import machine

        time.sleep(5)  # room to read the log or break into the REPL
        machine.reset()
