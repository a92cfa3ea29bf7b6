"""Redis connection and the queues Keepwell uses."""

from __future__ import annotations

from functools import cache

from redis import Redis
from rq import Queue

DUE = "keepwell-due"
OUTBOX = "keepwell-outbox"
IMPORT = "keepwell-import"  # parts of `keepwell events import`: after due work and deliveries
REPORTS = "keepwell-reports"  # report files the admin asked for (large reports)
SIMULATE = "keepwell-simulate"  # simulations too large for a web request: last
QUEUES = (DUE, OUTBOX, IMPORT, REPORTS, SIMULATE)


@cache
def connection(url: str) -> Redis:
    return Redis.from_url(url)


def queue(url: str, name: str) -> Queue:
    return Queue(name, connection=connection(url))
