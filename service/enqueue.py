"""``python -m service.enqueue``: see :mod:`service.cli.enqueue`."""
import sys

from service.cli import enqueue, run

if __name__ == "__main__":
    sys.exit(run(enqueue.main))
