"""Put first on a worker's PYTHONPATH by ``--profile``: starts the in-process sampler."""

from devtools.bench.profile.sampler import start

start()
