# The application: loads config, the board and its HAL (firmware/startup.py
# prepare), and wires the parts to the state machine:
#   state.Controller   every input -> a state change + actions
#   channel            the server: transport, session id, sends, liveness, backoff
#   audio_path         buffers, codec, jitter buffer, resampler, gain
#   voice              LED, display and local prompts (firmware/voice.py)
#   vad                the hands-free voice detector (listen_trigger "vad")
# Device runs the tasks (button, capture, playback, channel, Wi-Fi watch),
# turns what they see into Controller inputs and carries out the actions it
# returns. It decides nothing itself.
import asyncio
import gc
import sys
import time

from firmware import VERSION, config, log, resident
from firmware import state as S
from firmware.voice import Voice

_TAG = "app"


class Device:
    def __init__(self, config_path=config.PATH):
        from firmware import startup  # boot-only: dropped once the session is up (firmware/resident.py)

        cfg = self.cfg = config.load(config_path)
        self.board, self.hal = startup.prepare(cfg)
        self.machine = S.Machine()
        self.ctl = S.Controller(self.machine, cfg.get("button_mode"), cfg.get("listen_mode"))
        self.audio = None  # AudioPath, WebSocketChannel: made by bring_up (see _build)
        self.channel = None
        self.mcp = None  # the McpServer while MCP messages are in flight (see _mcp)
        self._mcp_busy = 0  # how many
        self._mcp_keep = {}  # what tools keep between loads (default_tools.Context.keep)
        self._mcp_entries = None  # the tools' tools/list entries as text (see _mcp_listing)
        self.settings = None  # where the session goes (firmware/ota.py session_settings), set by bring-up
        self.wifi = None  # firmware.wifi.WifiManager when the HAL has Wi-Fi
        self.channel_task = None  # the last channel's task (open, run, report)
        self.mic_on = False
        self._mic_flag = asyncio.Event()
        self._play_flag = asyncio.Event()
        self.voice = Voice(self.hal, cfg.get("language"), self.board.SPEAKER_RATE, self._play_flag)
        self.machine.listener = self._on_state
        self.vad = None  # the voice detector, with listen_trigger "vad" (made with the session's parts)
        self._preroll = False  # a detected turn's pre-roll waits to be sent

    def _build(self):
        """The session's parts, imported and made once boot has dropped its
        modules (firmware/resident.py): boot's peak and the session's do not
        add up, and the session's code fills the heap boot has just freed."""
        from firmware.audio_path import AudioPath
        from firmware.channel import MAX_HEADER, WebSocketChannel
        from firmware.identity import Identity

        cfg = self.cfg
        self.audio = AudioPath(cfg.get("audio_format"), self.board.SPEAKER_RATE, cfg.get("jitter_frames"),
                               cfg.get("volume"), MAX_HEADER)
        if cfg.get("listen_trigger") == "vad":
            from firmware.vad import Vad

            self.vad = Vad(self.audio.codec_up.frame_samples)
        # The pre-roll goes out in one burst after the open: room for all of it.
        self.channel = WebSocketChannel(cfg, Identity(cfg, self.hal), self.audio.codec_up.max_packet, self,
                                        burst=self.vad.slots if self.vad is not None else 0)

    def _mcp_server(self):
        from firmware import mcp

        return mcp.McpServer(self._mcp_tools, self.board.NAME, VERSION, self._mcp_entries)

    def _mcp_listing(self):
        """Every tool's tools/list entry as JSON text (~2 KB), made once right
        after boot's drop, when the heap is at its emptiest: the server lists
        from these, so a tools/list during a turn loads only firmware/mcp.py,
        and only a tools/call loads the tools (docs/mcp.md "Loading")."""
        from firmware import mcp

        try:
            entries = mcp.listing(self._mcp_tools())
        except Exception as e:  # noqa: BLE001 - e.g. no room, or a tool JSON cannot encode: boot goes on
            log.exc(_TAG, "MCP tools not listed at boot (tools/list will load them)", e)
            entries = None
        del mcp  # else the drop's collection keeps the module this name still holds
        resident.drop(resident.MCP)
        return entries

    def _mcp_tools(self):
        """The MCP server's tools, loaded at boot for their listing and again
        at each tools/call (and at tools/list when boot could not list them).
        Before the session's parts exist (at boot) the player is None: tools
        use it when called, never when registered."""
        from firmware import default_tools, mcp_tools

        registry = mcp_tools.Registry()
        ctx = default_tools.Context(self.hal, self.cfg, self.audio, self._schedule_reboot, VERSION,
                                    keep=self._mcp_keep)
        default_tools.register_defaults(registry, ctx)
        return registry

    def _schedule_reboot(self):
        asyncio.create_task(self._reboot())

    async def _reboot(self):
        await asyncio.sleep_ms(1000)  # let the reply and close go out first (docs/protocol.md §2.2)
        self.hal.reboot()

    # -- actions ---------------------------------------------------------------
    def apply(self, actions):
        ch, audio = self.channel, self.audio
        for act, arg in actions:
            if act == S.OPEN:
                self.channel_task = asyncio.create_task(self._run_channel())
            elif act == S.CLOSE:
                log.info(_TAG, "closing the channel: %s" % arg)
                asyncio.create_task(ch.close(arg))
            elif act == S.LISTEN_START:
                ch.listen_start(arg)
            elif act == S.LISTEN_STOP:
                ch.listen_stop()
            elif act == S.ABORT:
                ch.abort(arg)
            elif act == S.MIC_ON:
                self.mic_on = True
                self._mic_flag.set()
            elif act == S.MIC_OFF:
                if self.mic_on:
                    log.event("audio", audio.uplink_figures())
                self.mic_on = False
            elif act == S.FLUSH_PLAYBACK:
                audio.flush()
            elif act == S.DRAIN:
                self._report_downlink()
                audio.drain()
                self._play_flag.set()  # playback may already be empty: let it notice
            elif act == S.TURN_DONE:
                log.event("audio", audio.playback_figures())
                gc.collect()  # so the figure is comparable turn to turn (a soak shows it flat)
                log.event("heap", {"free": gc.mem_free(), "alloc": gc.mem_alloc()})
            elif act == S.REBOOT:
                self._schedule_reboot()

    def _on_state(self, name):
        """Every state move: the face, the LED, and the portal's prompt."""
        self.voice.show("speaking" if name == "draining" else name)
        if name == "wifi_configuring":
            self.voice.say("wifi_setup")

    def _report_downlink(self):
        d = self.audio.downlink_figures()
        if d["frames"] or d["ignored"]:
            log.event("audio", d)

    # -- the channel -------------------------------------------------------------
    async def _run_channel(self):
        """Open the channel, run it, report how it ended. Every way out ends
        in ctl.closed(): a failed open must never strand 'connecting'."""
        wifi = self.wifi
        if wifi is not None and not wifi.connected:
            self.voice.failed("wifi", "No Wi-Fi")
            self._report_error("no Wi-Fi; not connecting")
            self.apply(self.ctl.closed())
            return
        if wifi is not None:
            wifi.set_power_save(False)  # docs/protocol.md §11, item 13: no modem sleep during a session
        from firmware.channel import ChannelError

        by = None
        try:
            try:
                await self.channel.open(self.settings, self.audio.codec_up, self.audio.start_downlink)
            except ChannelError as e:
                self.voice.failed("server", "No server")  # first: its event tells tools.sim to wait for the prompt
                self._report_error(str(e))
                return
            self.audio.start_uplink(self.channel.header_len)
            self.apply(self.ctl.opened())
            by, reason = await self.channel.run()
        finally:
            if wifi is not None:
                wifi.set_power_save(True)
            self.apply(self.ctl.closed())
        # Reported only now, once the device is idle: a press that follows the
        # report must open a new channel, not barge into the dead one.
        log.info(_TAG, "channel closed by the %s: %s" % (by, reason))
        log.event("closed", {"by": by, "reason": reason})
        self._report_downlink()

    def _report_error(self, reason):
        log.error(_TAG, reason)
        log.event("error", {"reason": reason})

    # -- what the channel delivers (its listener interface) -----------------------
    def on_json(self, msg, size):
        t = msg["type"]
        ctl = self.ctl
        if t == "tts":
            st = msg.get("state")
            log.event("rx", {"type": "tts", "state": st, "text": msg.get("text")})
            if st == "start":
                self.voice.cut()  # the server's reply wins over a local prompt
                self.apply(ctl.tts_start())
            elif st == "stop":
                self.apply(ctl.tts_stop())
            elif st == "sentence_start":
                log.info(_TAG, "assistant: %s" % msg.get("text"))
        elif t == "stt":
            log.info(_TAG, "user: %s" % msg.get("text"))
            log.event("rx", {"type": "stt", "text": msg.get("text")})
        elif t == "llm":
            log.event("rx", {"type": "llm", "emotion": msg.get("emotion")})
            self.voice.emotion(msg.get("emotion"))
        elif t == "mcp":
            asyncio.create_task(self._mcp(msg.get("payload"), size))
        elif t == "system":
            log.event("rx", {"type": "system", "command": msg.get("command")})
            log.info(_TAG, "system command %r" % msg.get("command"))
            self.apply(ctl.system(msg.get("command")))
        elif t == "alert":
            log.warn(_TAG, "alert [%s] %s" % (msg.get("status"), msg.get("message")))
            log.event("rx", {"type": "alert", "status": msg.get("status"),
                             "message": msg.get("message"), "emotion": msg.get("emotion")})
        elif t == "goodbye":
            # MQTT-style end of session (docs/protocol.md §4); a WebSocket server may send it too.
            log.event("rx", {"type": "goodbye"})
            if msg.get("session_id") in (None, self.channel.session_id):
                self.apply(ctl.goodbye())
        elif t == "pong":
            pass  # the answer to our JSON ping: the frame itself was the proof of life
        elif t == "hello":
            log.warn(_TAG, "ignoring a second server hello")
        else:
            log.info(_TAG, "ignoring unknown message type %r" % t)
            log.event("rx", {"type": t, "ignored": True})

    async def _mcp(self, payload, size):
        """One MCP message, in its own task. MCP is rare (the session's set-up,
        now and then a tool call) and the server with its tools ~21 KB, so it
        is loaded for the message and forgotten as soon as none is in flight
        (firmware/resident.py MCP), before the reply is sent: the uplink and
        the reply get that heap back. Messages that overlap share one load.
        Why not after an idle gap: docs/mcp.md "Loading"."""
        method = rid = None
        if isinstance(payload, dict):
            method, rid = payload.get("method"), payload.get("id")
        log.event("rx", {"type": "mcp", "method": method})
        self._mcp_busy += 1
        short = False
        try:
            if self.mcp is None:
                gc.collect()  # a tidy heap for the load: its pieces fill the holes garbage leaves
                self.mcp = self._mcp_server()
            reply = await self.mcp.handle(payload, size)
        except MemoryError:
            short = True  # loading the server or building the reply: answered below, once the drop has freed it
        finally:
            self._mcp_busy -= 1
            if not self._mcp_busy:
                self.mcp = None
                resident.drop(resident.MCP)
        if short:
            # The server waits for every request's answer (30 s in the stock one):
            # say why instead of leaving it to time out.
            self._report_error("MCP %s: out of memory" % method)
            from firmware import protocol

            reply = None if rid is None else protocol.mcp_error(rid, -32603, "device out of memory")
        if reply is not None:
            self.channel.mcp(reply, rid)

    def on_audio(self, mv, n):
        """One downlink packet (mv[0:n], framing removed). Runs 16.7 times a
        second: no allocation."""
        audio = self.audio
        if not self.ctl.accepts_audio():
            audio.ignore_downlink()
        elif audio.push_downlink(mv, n):
            self._play_flag.set()
        elif audio.refused is not None:
            self._report_error(audio.refused)
            self.apply(self.ctl.undecodable(audio.refused))

    def on_dead(self, reason):
        log.warn(_TAG, "link dead: %s" % reason)
        self.apply(self.ctl.link_dead(reason))

    # -- tasks -----------------------------------------------------------------------
    async def _buttons(self):
        while True:
            ev = await self.hal.button.event()
            log.event("button", ev)
            if ev == "press":
                self.voice.cut()
            try:
                self.apply(self.ctl.press() if ev == "press" else self.ctl.release())
            except Exception as e:  # a bug behind one press must not leave the device deaf
                log.exc(_TAG, "button %s failed" % ev, e)

    async def _capture(self):
        """Mic -> codec -> channel, one 60 ms frame at a time. With the voice
        detector the mic never stops: between turns its frames go to the
        detector, which keeps the last 600 ms for the next turn's pre-roll."""
        mic, pcm, vad = self.hal.mic, self.audio.pcm_up, self.vad
        while True:
            while not self.mic_on and vad is None:
                self._mic_flag.clear()
                await self._mic_flag.wait()
            mic.start()
            while self.mic_on or vad is not None:
                await mic.readinto(pcm)
                if self.mic_on:
                    if self.channel.is_open:
                        if self._preroll:
                            self._send_preroll()
                        self.uplink_frame()
                elif vad is not None and vad.feed(pcm):
                    self._voice_onset()
            mic.stop()

    def _voice_onset(self):
        acts = self.ctl.voice_onset()
        if acts:
            v = self.vad
            # frame: the mic frame (counted from 1) the detector fired on.
            log.event("vad", {"frame": v.frames, "floor": v.floor, "preroll": v.preroll_frames()})
            self._preroll = True
            self.voice.say("listen")
            self.apply(acts)

    def _send_preroll(self):
        """The frames from before the detector fired (and while the channel
        opened) go first, so the server hears the first syllable."""
        self._preroll = False
        vad = self.vad
        n = vad.preroll_frames()
        for i in range(n):
            self.channel.send_audio(self.audio.pkt_up, self.audio.encode_uplink(vad.preroll(i)))
        # first: the mic frame (counted from 1) the pre-roll starts with.
        log.event("preroll", {"frames": n, "first": vad.frames - n + 1})
        vad.reset()

    def uplink_frame(self):
        """Encode, frame and queue the captured frame. No allocation."""
        self.channel.send_audio(self.audio.pkt_up, self.audio.encode_uplink())

    async def _playback(self):
        """Jitter buffer -> decode -> resample -> volume -> speaker; reports
        drained() once a finished reply has played out. Between replies the
        local prompts play the same way. The voice detector is muted while
        the speaker plays."""
        spk, ctl, voice = self.hal.speaker, self.ctl, self.voice
        playing = False
        while True:
            # Looked up each time round: this task runs from boot (its prompts: the
            # activation code, Wi-Fi setup), before bring_up has built the audio path.
            audio, vad = self.audio, self.vad
            out = audio.next_render() if audio is not None else None
            if out is None and voice.player is not None and not ctl.accepts_audio():
                out = voice.next_render(audio.gain if audio is not None else self._boot_gain())
            if out is not None:
                if not playing:
                    spk.start()
                    playing = True
                    if vad is not None:
                        vad.mute()
                await spk.write(out)
                continue
            queued = audio is not None and audio.queued()
            draining = ctl.draining()
            if playing and not queued and (draining or not ctl.accepts_audio()):
                await spk.stop()  # a reply has played out, or a prompt has
                playing = False
                if vad is not None:
                    vad.unmute()
            if draining and not queued:
                self.apply(ctl.drained())
            self._play_flag.clear()
            await self._play_flag.wait()

    def _boot_gain(self):
        from firmware import dsp  # prompts load it anyway; only boot's prompts come here

        return dsp.volume_gain(self.cfg.get("volume"))

    # -- start -----------------------------------------------------------------------
    async def _boot(self):
        """Boot (firmware/startup.py) in a coroutine of its own, which is
        garbage once it returns. Awaited straight from bring_up, whose frame
        lives on, something that frame still held kept firmware.startup and
        all it imports (28 KB on x64) alive for the session in 14 of 40 build
        directories sampled; from here, in none (docs/benchmarks.md "Sixth
        pass")."""
        from firmware import startup

        return await startup.bring_up(self.cfg, self.hal, self.machine, self.voice)

    async def bring_up(self):
        """Wi-Fi (or the portal), OTA check and activation, URL precedence;
        then the session's parts."""
        settings = await self._boot()
        self.wifi = settings.pop("wifi")
        self.settings = settings
        resident.collect()
        self._mcp_entries = self._mcp_listing()
        self._build()
        if self.wifi is not None:
            asyncio.create_task(self.wifi.supervise())
            asyncio.create_task(self._wifi_watch())

    async def _wifi_watch(self):
        """A Wi-Fi drop is an input like any other: the session's socket is dead."""
        while True:
            await self.wifi.changed.wait()
            self.wifi.changed.clear()
            if not self.wifi.connected:
                self.voice.error("Wi-Fi lost")
                self.voice.say("wifi_lost")
                self.apply(self.ctl.wifi_lost())

    async def run(self):
        # The HAL runs from the start: the button must work during boot (a
        # press cuts OTA retries short) and the simulator's control lines too.
        shutdown = asyncio.create_task(self.hal.until_shutdown())
        # The LED, the display and the speaker (for boot's prompts: the
        # activation code, Wi-Fi setup) work from the start too.
        self.voice.start()
        asyncio.create_task(self._playback())
        await self.bring_up()
        gc.collect()
        # Small, regular collections instead of one long pause mid-turn.
        gc.threshold(gc.mem_free() // 4 + gc.mem_alloc())
        log.event("ready", {"device_id": self.channel.identity.device_id, "free": gc.mem_free()})
        for task in (self._buttons, self._capture):
            asyncio.create_task(task())
        await shutdown
        await self.hang_up()
        return self.hal.exit_code

    async def hang_up(self):
        """Shut the channel down through the state machine and wait until its
        task has reported the close."""
        self.apply(self.ctl.shutdown())
        if self.channel_task is not None:
            await self.channel_task


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
