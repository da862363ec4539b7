#!/usr/bin/env python3
"""A peer for bench/run: the fleet's metric families, names and label sets, served by
prometheus_client for N servers with random values.

Per server: app_server_up, 4 gauges, app_requests_total{status} x3, the
app_request_duration_seconds histogram (11 buckets, +Inf, _sum, _count), the two network
counters and app_last_deploy_timestamp_seconds: 25 series, as fleetsim serves for a server
that is up. The default registry's process/platform/gc collectors stay on, as fleetsim
serves its own process_* series.

--tick S refreshes every value every S seconds from a thread (as fleetsim's 1 s tick
does); 0 sets them once at start and never again.
"""

import argparse
import random
import signal
import sys
import threading
import time

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROLES = ("web", "api", "db", "cache", "worker")
DCS = ("dc1", "dc2", "dc3")
LABELS = ("server", "dc", "role")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--servers", type=int, default=10)
    p.add_argument("--listen", default="127.0.0.1:8000")
    p.add_argument("--tick", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    host, _, port = a.listen.rpartition(":")
    rng = random.Random(a.seed)
    # fleetsim serves no _created series: the same series count, the same families.
    disable_created_metrics()

    up = Gauge("app_server_up", "Whether the server is up: 1 up, 0 down.", LABELS)
    gauges = [
        Gauge("app_cpu_usage", "CPU used, percent (0 to 100).", LABELS),
        Gauge("app_memory_usage", "Memory used, percent (0 to 100).", LABELS),
        Gauge("app_disk_usage", "Disk space used, percent (0 to 100).", LABELS),
        Gauge("app_requests_per_second", "Requests served, per second.", LABELS),
    ]
    requests = Counter(
        "app_requests_total", "Requests served, by status class (count).", LABELS + ("status",)
    )
    duration = Histogram(
        "app_request_duration_seconds", "Request duration, seconds.", LABELS, buckets=BUCKETS
    )
    rx = Counter("app_network_receive_bytes_total", "Network bytes received (bytes).", LABELS)
    tx = Counter("app_network_transmit_bytes_total", "Network bytes sent (bytes).", LABELS)
    deploy = Gauge(
        "app_last_deploy_timestamp_seconds",
        "Unix time of the last deploy of the server's role, seconds.",
        LABELS,
    )

    width = max(2, len(str(a.servers)))
    children = []
    for i in range(a.servers):
        lv = (f"srv-{i + 1:0{width}d}", DCS[i % len(DCS)], ROLES[i % len(ROLES)])
        children.append(
            (
                up.labels(*lv),
                [g.labels(*lv) for g in gauges],
                [requests.labels(*lv, s) for s in ("2xx", "4xx", "5xx")],
                duration.labels(*lv),
                rx.labels(*lv),
                tx.labels(*lv),
                deploy.labels(*lv),
            )
        )

    def refresh():
        now = time.time()
        for u, gs, reqs, hist, r, t, d in children:
            u.set(1)
            for g in gs:
                g.set(rng.uniform(0, 100))
            for c in reqs:
                c.inc(rng.uniform(0, 1000))
            hist.observe(rng.lognormvariate(-3, 1))
            r.inc(rng.uniform(0, 1e6))
            t.inc(rng.uniform(0, 1e6))
            d.set(now - rng.uniform(0, 86400))

    refresh()
    start_http_server(int(port), addr=host or "0.0.0.0")
    print(f"python peer: {a.servers} servers on {a.listen}", file=sys.stderr, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(a.tick if a.tick > 0 else 3600):
        if a.tick > 0:
            refresh()


if __name__ == "__main__":
    main()
