# The ESP32 HAL's mic and speaker against the modelled machine.I2S
# (issue 15 defects 1, 3 and 6).
import asyncio

from host_tests.esp32.common import hal, peak, tone, world

SPK_FRAME = 2880  # 60 ms at 24 kHz, s16 mono
MIC_FRAME = 1920  # 60 ms at 16 kHz, s16 mono


async def test_speaker_write_never_blocks_the_loop():
    # Defect 1: before the first poll the port's I2S is in blocking mode, and
    # asyncio's StreamWriter never polls while a blocking write takes it all.
    h = hal()
    frame = memoryview(bytearray(SPK_FRAME))
    h.speaker.start()
    for _ in range(10):  # 600 ms of audio, five times what the DMA holds
        await h.speaker.write(frame)
    i2s = world().i2s[1]
    assert i2s.asyncio_mode, "the speaker I2S never left blocking mode"
    assert i2s.stalled_ms == 0, "writes held the event loop for %d ms inside the C call" % i2s.stalled_ms


async def test_speaker_dma_is_120_ms_and_drained_means_played():
    # Defect 3: TX MONO takes 2 bytes a frame, so the ibuf must be sized from
    # that, and stop() (after which the app reports "drained") must come only
    # once the DMA has played out.
    h = hal()
    i2s = world().i2s[1]
    held_ms = i2s.dma_bytes * 1000 // (24000 * 2)
    assert 100 <= held_ms <= 125, "speaker DMA holds %d ms" % held_ms
    frame = memoryview(bytearray(SPK_FRAME))
    h.speaker.start()
    for _ in range(6):
        await h.speaker.write(frame)
    h.speaker.stop()
    assert i2s.unplayed_ms() <= 2, "%d ms still playing after stop()" % i2s.unplayed_ms()


async def test_mic_hears_the_first_syllable():
    # Defect 6: an INMP441 sends zeros for 2**18 SCK cycles (~256 ms) after its
    # clock starts; opening the I2S per listen cut every utterance's start.
    h = hal()
    await asyncio.sleep_ms(400)  # boot, Wi-Fi: the board is up before the first press
    world().air.say(tone(1000))  # the user starts talking as the button goes down
    h.mic.start()
    buf = bytearray(MIC_FRAME)
    await h.mic.readinto(buf)
    assert peak(buf) > 4000, "the first 60 ms frame is silent (peak %d)" % peak(buf)
    h.mic.stop()


async def test_mic_survives_no_dma_memory():
    # Defect 6: a failed DMA allocation (ENOMEM) must not end the capture task.
    world().dma_fail = 1
    h = hal()
    buf = bytearray(MIC_FRAME)
    h.mic.start()  # the first open failed; this one retries
    assert 0 in world().i2s, "the mic I2S was not opened again"
    world().air.say(tone(1000))
    for _ in range(6):  # past the INMP441's start-up on the fresh clock
        await h.mic.readinto(buf)
    assert peak(buf) > 4000, "no sound from the reopened mic"


async def test_mic_reads_a_frame_in_at_most_two_calls():
    # Defect 6: in asyncio mode a read returns what the DMA has (one 16 ms
    # buffer when woken by its poll); the HAL waits for the rest instead.
    h = hal()
    h.mic.start()
    i2s = world().i2s[0]
    calls = i2s.calls
    buf = bytearray(MIC_FRAME)
    for _ in range(5):
        await h.mic.readinto(buf)
    assert i2s.calls - calls <= 10, "%d I2S reads for 5 frames" % (i2s.calls - calls)


async def test_speaker_frames_allocate_nothing():
    # Steady state: each 60 ms frame goes into the DMA whole and the wait is
    # asyncio's reusable sleep, so playing allocates nothing.
    import micropython

    h = hal()
    frame = memoryview(bytearray(SPK_FRAME))
    for _ in range(4):  # fill the DMA first
        await h.speaker.write(frame)
    micropython.heap_lock()
    try:
        for _ in range(8):
            await h.speaker.write(frame)
    finally:
        micropython.heap_unlock()


async def test_heap_lock_control_partial_stream_write_allocates():
    # The control run for the test above: asyncio's StreamWriter keeps the
    # part a non-blocking write did not take in a new buffer; under
    # heap_lock() that must raise, or the lock proves nothing.
    import micropython

    h = hal()
    w = asyncio.StreamWriter(h.speaker.i2s)
    frame = bytearray(SPK_FRAME)
    while h.speaker.i2s.write(frame) == len(frame):
        pass  # fill the DMA to the brim
    micropython.heap_lock()
    try:
        w.write(frame)
    except MemoryError:
        return
    finally:
        micropython.heap_unlock()
    raise AssertionError("a partial StreamWriter.write allocated nothing under heap_lock")


async def test_mic_frames_allocate_nothing():
    import micropython

    h = hal()
    world().air.say(tone(3000))
    h.mic.start()
    buf = bytearray(MIC_FRAME)
    for _ in range(6):
        await h.mic.readinto(buf)
    micropython.heap_lock()
    try:
        for _ in range(8):
            await h.mic.readinto(buf)
    finally:
        micropython.heap_unlock()
    assert peak(buf) > 4000
