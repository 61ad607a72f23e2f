"""Draw the simulator's turns on one time axis as a PNG: device states, the
control messages each way, uplink and downlink audio, and the speaker's
waveform, with the latency marks of each turn.

    python -m tools.timeline EVENTS.jsonl --wav reply.wav -o turn.png

EVENTS.jsonl is what `python -m tools.sim --events FILE` writes (docs/events.md);
the simulator draws the same picture itself with --timeline FILE.png.
"""

import argparse
import json
import sys

from tools.turns import split

STATE_COLORS = {"idle": "#d1d5db", "connecting": "#f59e0b", "listening": "#22c55e", "speaking": "#3b82f6",
                "activating": "#a78bfa", "starting": "#e5e7eb", "upgrading": "#f472b6"}
MARKS = (("release", "release"), ("listen_stop", "listen stop"), ("stt", "stt"), ("tts_start", "tts start"),
         ("first_audio", "first audio"), ("last_audio", "last audio"))
MARK_COLORS = ("#111827", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#65a30d")
MARGIN_MS = 300
LANES = 4  # label lanes each side of the message line
CHAR_SHARE = 0.0048  # a label character's share of the window's width (8 pt on a 13 in figure)


class TimelineError(Exception):
    """Nothing to draw, or an unreadable input; the message is the one line the user sees."""


def read_events(path):
    events = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                raise TimelineError("%s line %d is not JSON" % (path, n)) from None
            if not isinstance(ev, dict) or not {"t", "k"} <= set(ev):
                raise TimelineError("%s line %d is not an event (needs keys t, k, d)" % (path, n))
            events.append(ev)
    return events


def _speaker_pcm(wav_path):
    """(rate, samples as int16 numpy array) of the speaker WAV, or None."""
    import numpy as np

    from tools.common import wav

    if not wav_path:
        return None
    try:
        rate, _, pcm = wav.read_wav(wav_path)
    except (OSError, ValueError):
        return None
    return rate, np.frombuffer(pcm, dtype="<i2")


def _span(events):
    """The window to draw: from just before the first button press (or listen
    start) to just after the last turn's audio."""
    start = next((e["t"] for e in events if e["k"] == "button" or (
        e["k"] == "tx" and (e.get("d") or {}).get("type") in ("hello", "listen"))), None)
    if start is None:
        raise TimelineError("no turn in the events: nothing was pressed or sent")
    end = events[-1]["t"]
    return start - MARGIN_MS, end + max(MARGIN_MS, (end - start) // 8)  # room for the last labels


def _states(events, t0, t1):
    """[(from_ms, to_ms, state)] inside the window."""
    out, cur, since = [], None, t0
    for e in events:
        if e["k"] != "state":
            continue
        if cur is not None and e["t"] > t0:
            out.append((max(since, t0), min(e["t"], t1), cur))
        cur, since = e["d"]["to"], e["t"]
    if cur is not None:
        out.append((max(since, t0), t1, cur))
    return out


def _label(d):
    kind = d.get("type", "?")
    if kind in ("listen", "tts") and d.get("state"):
        if d.get("state") == "sentence_start" and d.get("text"):
            text = d["text"]
            return "\u201c%s\u201d" % (text if len(text) <= 28 else text[:27] + "\u2026")
        return "%s %s" % (kind, d["state"])
    if kind == "stt" and d.get("text"):
        text = d["text"]
        return "stt \u201c%s\u201d" % (text if len(text) <= 28 else text[:27] + "\u2026")
    if kind == "mcp":
        return "mcp %s" % (d.get("method") or "reply")
    if kind == "llm":
        return "llm %s" % (d.get("emotion") or "")
    return kind


def draw(events, png_path, wav_path=None, title=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    t0, t1 = _span(events)
    sec = lambda t: (t - t0) / 1000.0  # noqa: E731 - the axis is seconds from the window start
    turns = split(events)
    fig, (ax_s, ax_m, ax_a, ax_w) = plt.subplots(
        4, 1, sharex=True, figsize=(13, 7.5), gridspec_kw={"height_ratios": [0.7, 2.4, 1.0, 1.6]})
    fig.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.08, hspace=0.12)

    # States as coloured bands with their names.
    for a, b, name in _states(events, t0, t1):
        ax_s.barh(0, sec(b) - sec(a), left=sec(a), height=0.8, color=STATE_COLORS.get(name, "#9ca3af"),
                  edgecolor="white")
        if sec(b) - sec(a) > 0.25:
            ax_s.text((sec(a) + sec(b)) / 2, 0, name, ha="center", va="center", fontsize=9)
    ax_s.set_yticks([0], ["state"])
    ax_s.set_ylim(-0.5, 0.5)

    # Messages: device -> server above the line, server -> device below; each
    # label takes the innermost lane where the label before it has ended.
    ax_m.axhline(0, color="#6b7280", lw=0.8)
    char_s = CHAR_SHARE * (t1 - t0) / 1000.0  # a label character's width in seconds
    lane_end = {"tx": [-1e9] * LANES, "rx": [-1e9] * LANES}
    for e in events:
        if e["k"] not in ("tx", "rx") or not t0 <= e["t"] <= t1 or not isinstance(e.get("d"), dict):
            continue
        up = e["k"] == "tx"
        x = sec(e["t"])
        label = " " + _label(e["d"])
        ends = lane_end[e["k"]]
        lane = next((i for i, end in enumerate(ends) if end < x), min(range(LANES), key=ends.__getitem__))
        ends[lane] = x + len(label) * char_s
        y = (0.25 + 0.3 * lane) * (1 if up else -1)
        color = "#15803d" if up else "#1d4ed8"
        ax_m.plot([x, x], [0, y], color=color, lw=0.8)
        ax_m.plot(x, 0, marker="^" if up else "v", color=color, ms=6)
        ax_m.text(x, y, label, fontsize=8, color=color, va="center")
    ax_m.set_ylim(-1.45, 1.45)
    ax_m.set_yticks([0.7, -0.7], ["device \u2192\nserver", "server \u2192\ndevice"])

    # Audio on the wire: uplink from listen start until the mic is turned off
    # (the audio up count), downlink from tts start until the reply's count.
    up_from = None
    down_from = None
    for e in events:
        d = e.get("d") if isinstance(e.get("d"), dict) else {}
        if e["k"] == "tx" and d.get("type") == "listen" and d.get("state") == "start":
            up_from = e["t"]
        elif e["k"] == "audio" and d.get("dir") == "up" and up_from is not None:
            ax_a.barh(1, sec(e["t"]) - sec(up_from), left=sec(up_from), height=0.6, color="#86efac")
            ax_a.text(sec(e["t"]), 1, " %d frames sent" % d.get("frames", 0), fontsize=8, va="center")
            up_from = None
        elif e["k"] == "rx" and d.get("type") == "tts" and d.get("state") == "start":
            down_from = e["t"]
        elif e["k"] == "audio" and d.get("dir") == "down" and down_from is not None:
            ax_a.barh(0, sec(e["t"]) - sec(down_from), left=sec(down_from), height=0.6, color="#93c5fd")
            ax_a.text(sec(e["t"]), 0, " %d frames received" % d.get("frames", 0), fontsize=8, va="center")
            down_from = None
    ax_a.set_yticks([1, 0], ["uplink", "downlink"])
    ax_a.set_ylim(-0.6, 1.6)

    # The speaker: each reply's samples spread over the span they were heard in.
    pcm = _speaker_pcm(wav_path)
    peak = 0.05
    for turn in turns:
        sp = turn.speaker
        if pcm is None or not sp or not sp.get("bytes"):
            continue
        rate, samples = pcm
        seg = samples[sp["offset"] // 2:(sp["offset"] + sp["bytes"]) // 2].astype(np.float32) / 32768.0
        if not len(seg):
            continue
        buckets = max(1, len(seg) // 1500)  # an envelope: min and max per bucket
        n = len(seg) // buckets * buckets
        env = seg[:n].reshape(-1, buckets)
        xs = np.linspace(sec(turn.first_audio), sec(turn.last_audio), len(env))
        ax_w.fill_between(xs, env.min(axis=1), env.max(axis=1), color="#2563eb", lw=0)
        peak = max(peak, float(np.abs(seg).max()))
    ax_w.set_ylim(-peak * 1.15, peak * 1.15)  # quiet replies stay visible; the ticks give the scale
    ax_w.set_ylabel("speaker\n(full scale 1)")
    ax_w.set_xlabel("seconds (device clock) from %.3f s" % (t0 / 1000.0))
    ax_w.set_xlim(0, sec(t1))

    # Each turn's latency marks across all rows, one colour per mark, named in the legend.
    handles = {}
    for turn in turns:
        for (attr, name), color in zip(MARKS, MARK_COLORS, strict=True):
            t = getattr(turn, attr)
            if t is None:
                continue
            for ax in (ax_s, ax_m, ax_a, ax_w):
                line = ax.axvline(sec(t), color=color, lw=1.1, ls="--")
            base = turn.release if turn.release is not None else turn.stt
            if len(turns) == 1 and base is not None and t != base:
                name = "%s %+d ms" % (name, t - base)  # marks this close need their numbers
            handles.setdefault(name, line)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="upper right", ncol=len(handles), fontsize=8,
                   frameon=False, bbox_to_anchor=(0.98, 0.925))
    for ax in (ax_s, ax_m, ax_a, ax_w):
        ax.grid(axis="x", color="#e5e7eb", lw=0.6)
        ax.set_axisbelow(True)
    lines = [t.latency_line() for t in turns] or ["no complete turn"]
    fig.suptitle((title + "\n" if title else "") + "\n".join(lines), fontsize=10, x=0.09, ha="left")
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.timeline", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("events", help="JSON-lines event file from python -m tools.sim --events")
    p.add_argument("--wav", help="the speaker WAV of the same run (python -m tools.sim --out)")
    p.add_argument("-o", "--output", default="timeline.png", help="PNG to write (default timeline.png)")
    a = p.parse_args(argv)
    try:
        events = read_events(a.events)
    except (OSError, TimelineError) as e:  # the input named on the command line is not usable
        print("timeline: error: %s" % (e if isinstance(e, TimelineError) else "cannot read %s: %s"
                                       % (a.events, e.strerror or e)), file=sys.stderr)
        return 2
    try:
        draw(events, a.output, a.wav)
    except (OSError, TimelineError) as e:
        print("timeline: FAILED: %s" % e, file=sys.stderr)
        return 1
    print("wrote %s" % a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
