"""Worker middleware: installed on the broker every worker process uses."""

import subprocess
import sys


def test_every_worker_gives_memory_back_after_each_message():
    """Checked in a process of its own: importing ``actors`` sets the global broker."""
    check = ("from actors import broker; from actors.middleware import GiveBackMemory; "
             "print(sum(isinstance(m, GiveBackMemory) for m in broker.middleware))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-1] == "1"
