"""Worker memory goes back to the OS: big blocks when freed, and after each message what it
freed."""

import subprocess
import sys

SCRIPT = """
import ctypes, sys
from service.load.memory import return_large_buffers

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


FREED_SCRIPT = """
import ctypes, sys
from service.load.memory import give_back_freed, return_large_buffers

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) << 10

assert return_large_buffers()  # as a worker runs: blocks under 1 MiB come from the heap
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(64 << 10) for _ in range(1600)]  # 100 MB, as a chunk's buffers
for block in blocks:
    ctypes.memset(block, 1, 64 << 10)
keep = libc.malloc(64 << 10)  # a block still in use above them pins the heap's top
before = rss()
for block in blocks:
    libc.free(block)
freed = rss()
give_back_freed()
print(before, freed, rss())
"""


def test_memory_a_message_freed_goes_back_to_the_os():
    out = subprocess.run([sys.executable, "-c", FREED_SCRIPT], capture_output=True, text=True,
                         check=True)
    before, freed, given_back = map(int, out.stdout.split())
    assert before - freed < 20 << 20          # free() alone leaves the pages resident
    assert freed - given_back > 80 << 20      # give_back_freed returns them
