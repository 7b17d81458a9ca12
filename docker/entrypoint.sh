#!/bin/sh
# Start a geoload command once PostGIS, Redis and RabbitMQ answer.
#
# Containers start in any order, and on a worker host of a multi-host setup the
# services live on another machine that may be restarting: waiting here turns a
# crash loop of "connection refused" into one clear line per service.
set -eu

python -m service.wait postgis redis rabbitmq --timeout 300
exec "$@"
