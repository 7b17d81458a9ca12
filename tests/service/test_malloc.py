"""Pinning glibc's mmap threshold keeps big blocks out of the heap, after a big free too."""

import subprocess
import sys

SCRIPT = """
import ctypes, sys
from service.malloc import return_large_buffers

if sys.argv[1] == "pinned":
    assert return_large_buffers()
libc = ctypes.CDLL(None)
libc.malloc.restype = libc.sbrk.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.sbrk.argtypes = [ctypes.c_long]
libc.free(libc.malloc(24 << 20))  # glibc's own rule now raises its threshold to 24 MB
start = libc.sbrk(0)
block = libc.malloc(4 << 20)
print(libc.sbrk(0) - start)  # how far the heap grew for the 4 MB block
libc.free(block)
"""


def _heap_growth(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def test_a_big_block_is_mmapped_and_not_left_in_the_heap():
    assert _heap_growth("default") >= 4 << 20  # the heap, where fragmentation keeps it
    assert _heap_growth("pinned") == 0          # its own mapping, returned on free
