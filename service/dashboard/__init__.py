"""The dashboard: runs, datasets, failures, queues and workers, in a browser and as JSON.

Started with ``python -m service.dashboard``. Everything it shows is read from
PostGIS (durable history), Redis (live progress, heartbeats) and RabbitMQ's
management API at request time, so it keeps no state of its own and a restart
loses nothing.
"""
