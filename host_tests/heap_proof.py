# Zero-allocation proofs for the MicroPython scripts of the heap tests
# (test_audio_heap.py, test_voice_heap.py), imported under micropython with
# host_tests/ on MICROPYPATH. A call is warmed up once (the first call of
# native code and attribute caches may allocate), then run `reps` times inside
# micropython.heap_lock(), where any heap allocation raises MemoryError; the
# gc.mem_alloc() growth is recorded as well. Each script also proves a call
# that allocates, so a harness that cannot fail is caught.
import gc

import micropython


class Proofs:
    def __init__(self, reps):
        self.reps = reps  # default repetitions per call
        self.results = {}  # name -> [None or "MemoryError", bytes gc.mem_alloc() grew by]

    def prove(self, name, fn, reps=0):
        reps = reps or self.reps
        fn()
        gc.collect()
        before = gc.mem_alloc()
        err = None
        micropython.heap_lock()
        try:
            i = 0
            while i < reps:
                fn()
                i += 1
        except MemoryError:
            err = "MemoryError"
        micropython.heap_unlock()
        self.results[name] = [err, gc.mem_alloc() - before]
