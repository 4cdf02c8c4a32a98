#!/usr/bin/env python3
"""Plots MTTA by severity and exception rate by workflow from a Prometheus that scrapes handoffd.

Reads the recording rules of metrics/rules/ (handoffd:mtta_seconds:rate1h and
handoffd:exception_rate:ratio_rate1h) over the last --minutes through the HTTP API
(/api/v1/query_range) and draws them with matplotlib, MTTA against the first-response target of
each SLA band. tests/integration/test_prometheus_mtta.py --plot FILE calls it at the end of its
scenario; metrics/mtta-exception-rate.png was made that way.

  python3 metrics/plot_from_prometheus.py --prometheus http://127.0.0.1:9090 --out out.png
"""

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SLA_BANDS = {"P1": 300, "P2": 900, "P3": 14400}
COLORS = {"P1": "tab:red", "P2": "tab:orange", "P3": "tab:blue"}


def query_range(url, expr, start, end, step):
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"query failed: {expr}: {body}")
    return body["data"]["result"]


def series(result, label):
    out = {}
    for s in result:
        name = s["metric"].get(label, "")
        out[name] = ([float(t) for t, _ in s["values"]], [float(v) for _, v in s["values"]])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument("--minutes", type=float, default=60, help="how far back to plot")
    parser.add_argument("--step", type=float, default=1, help="query step in seconds")
    parser.add_argument("--out", required=True, help="PNG file to write")
    args = parser.parse_args()

    end = time.time()
    start = end - args.minutes * 60
    mtta = series(query_range(args.prometheus, "handoffd:mtta_seconds:rate1h", start, end,
                              args.step), "severity")
    rate = series(query_range(args.prometheus, "handoffd:exception_rate:ratio_rate1h", start, end,
                              args.step), "workflow")
    if not mtta and not rate:
        print("no handoffd series in Prometheus for that range", file=sys.stderr)
        return 1

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    t0 = min(ts[0] for ts, _ in list(mtta.values()) + list(rate.values()) if ts)
    for sev in sorted(mtta):
        ts, vs = mtta[sev]
        ax1.plot([t - t0 for t in ts], vs, label=f"MTTA {sev}", color=COLORS.get(sev), lw=2)
        if sev in SLA_BANDS:
            ax1.axhline(SLA_BANDS[sev], color=COLORS.get(sev), ls="--", lw=1,
                        label=f"{sev} SLA band ({SLA_BANDS[sev]} s)")
        if vs:
            ax1.annotate(f"{vs[-1]:.0f} s", (ts[-1] - t0, vs[-1]), textcoords="offset points",
                         xytext=(-30, 6), color=COLORS.get(sev))
    ax1.set_yscale("log")
    ax1.set_ylabel("seconds (log)")
    ax1.set_title("MTTA by severity: handoffd:mtta_seconds:rate1h")
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(True, which="both", alpha=0.3)

    for wf in sorted(rate):
        ts, vs = rate[wf]
        # matplotlib hides legend labels that start with "_".
        label = f"{wf} (outside the catalog)".lstrip("_") if wf.startswith("_") else wf
        ax2.plot([t - t0 for t in ts], vs, label=label, lw=2)
        if vs:
            ax2.annotate(f"{vs[-1]:.2f}", (ts[-1] - t0, vs[-1]), textcoords="offset points",
                         xytext=(-25, 6))
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_ylabel("exceptions per run started")
    ax2.set_xlabel("seconds since the first sample")
    ax2.set_title("Exception rate by workflow: handoffd:exception_rate:ratio_rate1h")
    ax2.legend(loc="upper left", fontsize=8)
    ax2.grid(True, alpha=0.3)

    fig.suptitle("handoffd, scraped by Prometheus during test_prometheus_mtta.py", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
