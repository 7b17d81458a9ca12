"""``python -m service.wait``: see :mod:`service.cli.wait`."""
import sys

from service.cli import run, wait

if __name__ == "__main__":
    sys.exit(run(wait.main))
