"""Tiny WAV helpers for the host tools (16-bit PCM only).

read_wav(path) -> (rate, channels, pcm_bytes)   pcm_bytes are s16le, interleaved
write_wav(path, rate, pcm_bytes, channels=1)    writes s16le PCM

Anything that is not 16-bit integer PCM is refused with WavError, whose message
is a single readable line meant to be shown to the user as-is.
"""

import wave


class WavError(ValueError):
    """Bad or unsupported WAV input; str(e) is a one-line user-facing message."""


def read_wav(path):
    """Return (sample_rate, channels, pcm_bytes) of a 16-bit PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as w:
            width = w.getsampwidth()
            if width != 2:
                raise WavError(
                    f"{path}: {width * 8}-bit samples; only 16-bit PCM WAV is supported"
                )
            rate = w.getframerate()
            channels = w.getnchannels()
            pcm = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise WavError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WavError(f"{path}: is a directory, not a WAV file") from None
    except OSError as e:
        raise WavError(f"{path}: cannot read ({e.strerror or e})") from None
    except wave.Error as e:
        # wave raises e.g. "unknown format: 3" for float WAVs, "file does not
        # start with RIFF id" for non-WAV input.
        raise WavError(f"{path}: not a 16-bit PCM WAV file ({e})") from None
    except EOFError:
        raise WavError(f"{path}: truncated WAV file") from None
    # A truncated data chunk can leave half a sample frame at the end.
    frame = 2 * channels
    pcm = pcm[: len(pcm) - len(pcm) % frame]
    return rate, channels, pcm


def write_wav(path, rate, pcm_bytes, channels=1):
    """Write s16le PCM bytes as a WAV file."""
    if not isinstance(rate, int) or rate <= 0:
        raise WavError(f"invalid sample rate {rate!r}")
    if channels < 1:
        raise WavError(f"invalid channel count {channels!r}")
    if len(pcm_bytes) % (2 * channels):
        raise WavError(f"PCM length {len(pcm_bytes)} is not a whole number of 16-bit frames")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(pcm_bytes))
