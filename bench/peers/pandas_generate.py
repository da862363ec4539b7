#!/usr/bin/env python3
"""A pandas/NumPy generator of fleetsim's CSV history: the peer of `fleetsim generate` in bench/run.

    pandas_generate.py --servers 1000 --step 15s --duration 1d --out history.csv

It writes the columns of fleetsim's CSV, in its order and number formats: an RFC 3339 UTC
timestamp (milliseconds only when the step needs them), srv-NN names padded to the fleet's
width, dc1..dc3 and the roles web/api/db/cache/worker in the proportions 3:3:1:1:2, up as
1 or 0 (a server that is down has its other fields empty), and fixed decimals: 2 for
cpu/memory/disk/rps, 1 for network bytes/s, 3 for latencies and error_rate. Rows are ordered
by time then server; as in fleetsim, the history ends (excluded) at now rounded down to the
step and starts --duration before that.

The values are its own, not fleetsim's model: per server, mean-reverting random walks
(AR(1), computed for a whole block of time at once with cumulative sums) around role levels
with a daily cycle, drawn with NumPy over a (time x server) grid, then put in a DataFrame
and written with `DataFrame.to_csv`.

Memory is bounded: the history is built and written one chunk of time at a time
(--chunk-rows rows, 100,000 by default, i.e. 100 instants of 1,000 servers), and only the
walks' last values are carried from one chunk to the next, so peak memory depends on the
chunk and the fleet, not on --duration. A whole frame of 1,000 servers x 1 day x 15 s
would be 5.76 M rows at once.

Like fleetsim, it writes to a temporary file beside --out and renames it into place once
complete (after an fsync), so the file appears whole or not at all.
"""

import argparse
import datetime
import os
import re
import sys
import tempfile

import numpy as np
import pandas as pd

HEADER = [
    "timestamp", "server", "dc", "role", "up",
    "cpu_usage", "memory_usage", "disk_usage",
    "network_rx_bytes_per_second", "network_tx_bytes_per_second",
    "rps", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate",
]
DECIMALS = {
    "cpu_usage": 2, "memory_usage": 2, "disk_usage": 2,
    "network_rx_bytes_per_second": 1, "network_tx_bytes_per_second": 1,
    "rps": 2, "latency_p50_ms": 3, "latency_p95_ms": 3, "latency_p99_ms": 3, "error_rate": 3,
}
DATACENTERS = ["dc1", "dc2", "dc3"]
# Per role: weight in the fleet, requests/s, CPU % at that load, memory %, median latency
# ms, log-normal spread of latency (p95/p99 follow from it), bytes per request in and out.
ROLES = {
    "web":    dict(weight=3, rps=100.0, cpu=30.0, mem=40.0, ms=35.0, spread=0.55, rx=1_100, tx=18_000),
    "api":    dict(weight=3, rps=70.0, cpu=35.0, mem=50.0, ms=60.0, spread=0.60, rx=1_800, tx=6_500),
    "db":     dict(weight=1, rps=250.0, cpu=45.0, mem=75.0, ms=4.0, spread=0.80, rx=900, tx=4_000),
    "cache":  dict(weight=1, rps=900.0, cpu=20.0, mem=80.0, ms=0.8, spread=0.50, rx=300, tx=1_200),
    "worker": dict(weight=2, rps=15.0, cpu=55.0, mem=70.0, ms=180.0, spread=0.45, rx=3_500, tx=1_900),
}
Z95, Z99 = 1.6448536, 2.3263479
UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def duration_ms(text):
    """'15s', '1d', '1h30m', '500ms' in milliseconds (fleetsim's units)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", "", text).strip():
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 15s, 10m, 1d)")
    ms = round(sum(float(n) * UNITS_MS[u] for n, u in parts))
    if ms <= 0:
        raise argparse.ArgumentTypeError(f"not a positive duration: {text!r}")
    return ms


def roles_of(servers):
    """Smooth weighted round robin over the role weights, so that any stretch of the fleet
    holds the roles in proportion and a server's role depends on its index alone."""
    names = list(ROLES)
    weights = [ROLES[r]["weight"] for r in names]
    total = sum(weights)
    credit = [0.0] * len(names)
    out = []
    for _ in range(servers):
        credit = [c + w for c, w in zip(credit, weights)]
        best = max(range(len(names)), key=lambda i: (credit[i], -i))
        credit[best] -= total
        out.append(names[best])
    return out


def stamps(times_ms):
    """RFC 3339 UTC, with milliseconds only where an instant has them."""
    t = pd.to_datetime(times_ms, unit="ms", utc=True)
    if (times_ms % 1000 == 0).all():
        return np.asarray(t.strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=object)
    return np.asarray([s[:-3] + "Z" for s in t.strftime("%Y-%m-%dT%H:%M:%S.%f")], dtype=object)


class Walk:
    """Mean-reverting random walks, one per server: x_t = phi x_(t-1) + sigma e_t, with
    phi = exp(-step / tau). A block of instants is computed at once as
    x_t = phi^t (x_0 + cumsum(phi^-k sigma e_k)); blocks are kept short enough that phi^-k
    stays far from overflow whatever the step."""

    def __init__(self, rng, servers, step_s, tau_s, sigma):
        self.rng = rng
        self.phi = np.exp(-step_s / tau_s)
        self.block = max(1, int(20 * tau_s / step_s))
        # The stationary spread, so that the walk starts as if it had been running.
        self.sigma = sigma * np.sqrt(1 - self.phi ** 2)
        self.x = rng.standard_normal(servers) * sigma

    def next(self, steps):
        out = np.empty((steps, self.x.size))
        for a in range(0, steps, self.block):
            n = min(self.block, steps - a)
            k = np.arange(1, n + 1)[:, None]
            decay = self.phi ** k
            e = self.rng.standard_normal((n, self.x.size)) * self.sigma
            out[a:a + n] = decay * (self.x + np.cumsum(e / decay, axis=0))
            self.x = out[a + n - 1]
        return out


def outages(rng, servers, steps, step_ms):
    """(server, first step, step after the last) of rare outages: about one per server
    every two days, each 2 to 20 minutes long."""
    days = steps * step_ms / 86_400_000
    count = rng.poisson(servers * days / 2)
    who = rng.integers(0, servers, count)
    first = rng.integers(0, steps, count)
    length = np.maximum(1, (rng.uniform(2, 20, count) * 60_000 / step_ms).astype(np.int64))
    return who, first, first + length


def fixed(values, decimals, up):
    """Strings with exactly `decimals` places, and "" where the server is down."""
    # Python's float formatting, mapped over a list, is the quickest fixed-decimal
    # formatting at hand: np.char.mod is slower, and to_csv's float_format is one format
    # for every column.
    text = np.array(list(map(f"{{:.{decimals}f}}".format, values.tolist())), dtype=object)
    text[~up] = ""
    return text


def generate(out, servers, step_ms, duration, seed, chunk_rows):
    end = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000) // step_ms * step_ms
    start = end - duration
    steps = -(-duration // step_ms)
    rng = np.random.default_rng(seed)
    step_s = step_ms / 1000

    width = max(2, len(str(servers)))
    names = np.array([f"srv-{i + 1:0{width}d}" for i in range(servers)], dtype=object)
    dcs = np.array([DATACENTERS[i % len(DATACENTERS)] for i in range(servers)], dtype=object)
    role = roles_of(servers)
    level = {k: np.array([ROLES[r][k] for r in role], dtype=float)
             for k in ("rps", "cpu", "mem", "ms", "spread", "rx", "tx")}
    # Each server differs a little from its role: a fixed share of its load, its own disk.
    share = rng.lognormal(0.0, 0.15, servers)
    disk0 = rng.uniform(15, 60, servers)
    fill_per_day = rng.uniform(0.2, 2.0, servers)
    mem0 = level["mem"] * rng.uniform(0.9, 1.1, servers)
    phase = rng.uniform(-1.0, 1.0, servers)  # hours: servers do not peak in lockstep

    walks = {
        "load": Walk(rng, servers, step_s, 1_800, 0.12),
        "cpu": Walk(rng, servers, step_s, 600, 4.0),
        "mem": Walk(rng, servers, step_s, 7_200, 3.0),
        "disk": Walk(rng, servers, step_s, 3_600, 0.3),
        "lat": Walk(rng, servers, step_s, 300, 0.10),
        "err": Walk(rng, servers, step_s, 900, 0.5),
        "rx": Walk(rng, servers, step_s, 120, 0.08),
        "tx": Walk(rng, servers, step_s, 120, 0.08),
    }
    down_who, down_first, down_end = outages(rng, servers, steps, step_ms)

    per_chunk = max(1, chunk_rows // servers)
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(out)}.", suffix=".tmp")
    rows = 0
    try:
        with os.fdopen(fd, "w", newline="") as f:
            for first in range(0, steps, per_chunk):
                n = min(per_chunk, steps - first)
                k = np.arange(first, first + n)
                t_ms = start + k * step_ms
                hour = ((t_ms % 86_400_000) / 3_600_000)[:, None] + phase
                daily = 1 + 0.35 * np.sin(2 * np.pi * (hour - 8) / 24)  # peaks at 14:00

                up = np.ones((n, servers), dtype=bool)
                hit = (down_first < first + n) & (down_end > first)
                for s, a, b in zip(down_who[hit], down_first[hit], down_end[hit]):
                    up[max(a, first) - first:min(b, first + n) - first, s] = False

                load = daily * share * np.exp(walks["load"].next(n))
                rps = level["rps"] * load
                cpu = np.clip(level["cpu"] * (0.4 + 0.6 * load) + walks["cpu"].next(n), 0, 100)
                mem = np.clip(mem0 + walks["mem"].next(n), 0, 100)
                days = ((t_ms - start) / 86_400_000)[:, None]
                disk = np.clip(disk0 + fill_per_day * days + walks["disk"].next(n), 0, 99)
                busy = cpu / 100
                p50 = level["ms"] * (1 + 2 * busy ** 4) * np.exp(walks["lat"].next(n))
                err = np.maximum(0, 0.1 + 3 * busy ** 6 + walks["err"].next(n) * 0.1)
                rx = rps * level["rx"] * np.exp(walks["rx"].next(n))
                tx = rps * level["tx"] * np.exp(walks["tx"].next(n))
                spread = level["spread"]

                columns = {
                    "cpu_usage": cpu, "memory_usage": mem, "disk_usage": disk,
                    "network_rx_bytes_per_second": rx, "network_tx_bytes_per_second": tx,
                    "rps": rps, "latency_p50_ms": p50,
                    "latency_p95_ms": p50 * np.exp(Z95 * spread),
                    "latency_p99_ms": p50 * np.exp(Z99 * spread),
                    "error_rate": err,
                }
                flat_up = up.ravel()  # (time x server) in C order: by time, then server
                frame = pd.DataFrame({
                    "timestamp": np.repeat(stamps(t_ms), servers),
                    "server": np.tile(names, n),
                    "dc": np.tile(dcs, n),
                    "role": np.tile(np.array(role, dtype=object), n),
                    "up": flat_up.astype(np.int8),
                    **{c: fixed(v.ravel(), DECIMALS[c], flat_up) for c, v in columns.items()},
                }, columns=HEADER)
                frame.to_csv(f, header=first == 0, index=False, lineterminator="\n")
                rows += len(frame)
                # Freed before the next chunk is built, so that two never coexist.
                del frame, columns, up, flat_up
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, out)
    except BaseException:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", type=int, default=10, metavar="N")
    p.add_argument("--step", type=duration_ms, default="1m", help="time between rows (15s, 1m, ...)")
    p.add_argument("--duration", type=duration_ms, default="7d", help="length of the history (1h, 1d, ...)")
    p.add_argument("--out", default="history.csv", metavar="PATH")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--chunk-rows", type=int, default=100_000, metavar="N",
                   help="rows built and written at a time (bounds memory)")
    args = p.parse_args()
    if args.servers < 1:
        p.error("--servers must be at least 1")
    rows = generate(args.out, args.servers, args.step, args.duration, args.seed, args.chunk_rows)
    print(f"pandas_generate: wrote {rows} rows to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
