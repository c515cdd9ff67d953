"""Plot the soak CSV (tests/examples/soak.rs) into a PNG: memory and file size, latency
percentiles, and requests and errors per interval, over time."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    rows = list(csv.DictReader(f))
t = [float(r["elapsed_s"]) / 60 for r in rows]


def col(name):
    return [float(r[name]) for r in rows]


fig, (a, b, c) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
a.plot(t, col("rss_mib"), label="daemon VmRSS (MiB)")
a.plot(t, col("db_mib"), label="data file (MiB)")
a.set_ylabel("MiB")
a.set_ylim(bottom=0)
a.legend(loc="upper left")
a.set_title("Sundial soak: steady mixed load (tests/examples/soak.rs)")
b.plot(t, col("p50_ms"), label="p50")
b.plot(t, col("p99_ms"), label="p99")
b.plot(t, col("max_ms"), label="max", alpha=0.4)
b.set_yscale("log")
b.set_ylabel("request latency (ms)")
b.legend(loc="upper left")
c.plot(t, col("requests"), label="requests per 5 s")
c.plot(t, col("errors"), label="errors per 5 s", color="red")
c.set_ylabel("count")
c.set_xlabel("minutes")
c.set_ylim(bottom=0)
c.legend(loc="upper left")
fig.tight_layout()
fig.savefig(dst, dpi=90)
print(f"wrote {dst}")
