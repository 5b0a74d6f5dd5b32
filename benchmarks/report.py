#!/usr/bin/env python3
"""Turns benchmarks/run's raw.jsonl into results.json, results.md and PNG plots.

    python3 benchmarks/report.py [--mode full|quick|smoke] [--livecast-threads N] RESULTS_DIR

raw.jsonl holds one line per measurement: {"scenario", "server", "params",
"result"}, where result is a livecast-loadgen (or livecast-bench-redis-hop)
JSON line. Plots need gnuplot (Debian: gnuplot-nox); without it the tables
are still written and the plots are skipped with a message.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
from collections import defaultdict

sys.dont_write_bytecode = True  # no __pycache__ in the source tree for the two modules below
import stalled_readers  # noqa: E402
from report_numbers import fmt, ratio, summary  # noqa: E402

SERVERS = ["livecast", "livecast-sio", "naive", "ws", "socketio"]
NAMES = {"livecast": "livecast", "livecast-sio": "livecast (Socket.IO protocol)", "naive": "naive websocketpp",
         "ws": "ws 8", "socketio": "Socket.IO 4.8"}


def slope(points):
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def b_order(key):
    """One topic before many, then by payload."""
    shape, payload = key.split("/")
    return (shape != "one", int(payload))


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def build(rows):
    out = {"headline": {}, "tls": {}, "A": {}, "B": {}, "C": {}, "D": {}, "E": None, "F": None, "G": None,
           "aggregator": None}
    histograms = {}
    a_points = defaultdict(list)
    b_steps = defaultdict(lambda: defaultdict(list))
    f_lines = []
    g_runs = []
    for row in rows:
        scenario, server, params, result = row["scenario"], row["server"], row["params"], row["result"]
        if scenario == "headline":
            out["headline"][server] = summary(result)
            out["headline"][server]["connections"] = params.get("connections")
            out["headline"][server]["rate"] = params.get("rate", 20)
            histograms[server] = result.get("histogram_us", [])
        elif scenario == "tls":
            entry = summary(result)
            entry["connections"] = params.get("connections")
            entry["rss_kib_before_connect"] = result.get("server", {}).get("rss_kib_before_connect")
            deliveries = result.get("deliveries") or 0
            cpu_s = result.get("server", {}).get("cpu_s")
            entry["server_cpu_us_per_delivery"] = cpu_s * 1e6 / deliveries if cpu_s and deliveries else None
            out["tls"][params.get("variant", "plain")] = entry
        elif scenario == "A":
            s = result.get("server", {})
            sock = result.get("sockstat", {})
            a_points[server].append({
                "connections": result.get("subscribed", 0),
                "rss_kib": s.get("rss_kib_measure_start"),
                "rss_kib_before_connect": s.get("rss_kib_before_connect"),
                "tcp_mem_kib": sock.get("tcp_mem_kib"),
                "tcp_mem_kib_before_connect": sock.get("tcp_mem_kib_before_connect"),
            })
        elif scenario == "B":
            key = f"{params['shape']}/{params['payload']}"
            step = result["step"]
            rate = params["start_rate"] * (2 ** step)
            entry = summary(result)
            entry["offered_per_s"] = rate * params["connections"]
            entry["rate_per_topic"] = rate
            b_steps[key][server].append(entry)
        elif scenario == "C":
            entry = summary(result)
            entry.update({"rate": params["rate"], "saturation_per_s": params["saturation_per_s"]})
            out["C"].setdefault(server, {})[str(params["load_percent"])] = entry
            histograms[f"C{params['load_percent']}/{server}"] = result.get("histogram_us", [])
        elif scenario == "D":
            entry = summary(result)
            entry["instances"] = params.get("instances")
            entry["connections"] = params.get("connections")
            entry["duplicates"] = result.get("duplicates")
            entry["server_cpu_s"] = (result.get("server") or {}).get("cpu_s")
            out["D"][server] = entry
        elif scenario == "G":
            g_runs.append(storm_run(params, result))
        elif scenario == "E":
            out["E"] = result
        elif scenario == "aggregator":
            out["aggregator"] = result
        elif scenario == "F":
            f_lines.append((params, result))
    for server, points in a_points.items():
        points.sort(key=lambda p: p["connections"])
        rss = [(p["connections"], p["rss_kib"]) for p in points if p["rss_kib"] is not None]
        tcp = [(p["connections"], p["tcp_mem_kib"]) for p in points if p["tcp_mem_kib"] is not None]
        out["A"][server] = {
            "points": points,
            "rss_kib_per_connection": slope(rss),
            "tcp_mem_kib_per_connection": slope(tcp),
        }
    if f_lines:
        out["F"] = stalled_readers.summarise(f_lines)
    if g_runs:
        out["G"] = storm_summary(g_runs)
    for key, per_server in b_steps.items():
        out["B"][key] = {}
        for server, steps in per_server.items():
            steps.sort(key=lambda s: s["offered_per_s"])
            best_at = max(range(len(steps)), key=lambda i: steps[i]["deliveries_per_s"] or 0)
            best = steps[best_at]
            # Past the peak (--past-saturation): delivered at 2x, 4x... the
            # peak's offered load, as a share of the peak (issue 15).
            retained = [st["deliveries_per_s"] / best["deliveries_per_s"]
                        for st in steps[best_at + 1:] if st["deliveries_per_s"] is not None and best["deliveries_per_s"]]
            out["B"][key][server] = {
                "steps": steps,
                "saturation_per_s": best["deliveries_per_s"],
                "deliveries_per_cpu_s_at_saturation": best["deliveries_per_cpu_s"],
                "retained_past_peak": retained,
            }
    return out, histograms


STORM_COUNTS = ("reconnected", "resubscribed", "caught_up", "not_recovered", "gaps", "duplicates", "failed")


def storm_run(params, result):
    """One reconnect storm (livecast-loadgen --reconnect-storm) as the report keeps it."""
    run = {k: result.get(k) for k in ("storm_wall_s", "storm_server_cpu_s", "storm_server_cpu_excess_s",
                                      "steady_server_cpu_percent", "setup_s", "connected", "subscribed",
                                      "setup_failed", "timed_out", "resubscribe_ms", "catch_up_ms") + STORM_COUNTS}
    run["connections"] = result.get("connections", params.get("connections"))
    run["rate"] = params.get("rate")
    return run


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def storm_summary(runs):
    """Scenario G: every run, and the median and spread of its times."""
    out = {"runs": runs, "connections": runs[0].get("connections"), "rate": runs[0].get("rate")}
    for key in ("storm_wall_s", "storm_server_cpu_s", "storm_server_cpu_excess_s"):
        values = [x[key] for x in runs if x.get(key) is not None]
        out[key] = {"median": median(values), "min": min(values, default=None), "max": max(values, default=None)}
    for key in STORM_COUNTS:
        out[key] = sum(x.get(key) or 0 for x in runs)
    out["all_caught_up"] = all((x.get("caught_up") or 0) >= (x.get("connections") or 0) for x in runs)
    return out


def markdown(r):
    lines = []
    add = lines.append
    meta = r["meta"]
    add(f"# livecast benchmarks, {meta['date']}")
    add("")
    peers = ", ".join(f"{k} {v}" for k, v in (meta.get("peers") or {}).items())
    add(f"Mode `{meta['mode']}`, {meta['cores']} cores, {meta['kernel']}, livecast with "
        f"{meta['livecast_threads']} thread(s); node {meta.get('node') or '-'}{', ' + peers if peers else ''}. "
        f"Load average (1, 5, 15 min) at the end: {', '.join(map(str, meta.get('load_average') or [])) or '-'}. "
        "Servers and load generator share the machine. "
        "Ratios are livecast divided by the peer (for latency and memory, lower is better).")
    add("")

    def servers_in(d):
        return [s for s in SERVERS if s in d]

    h = r["headline"]
    if h:
        n = next(iter(h.values())).get("connections")
        rate = next(iter(h.values())).get("rate", 20)
        add(f"## Headline: 1 topic, {fmt(n)} subscribers, {rate} publications/s, 100 B")
        add("")
        add("| server | connected | deliveries/s | server CPU % | deliveries per CPU-s | livecast / this | p50 ms | p99 ms | p99.9 ms | livecast p99 / this | gaps |")
        add("|---|---|---|---|---|---|---|---|---|---|---|")
        lc = h.get("livecast", {})
        for s in servers_in(h):
            x = h[s]
            add(f"| {NAMES[s]} | {fmt(x['connected'])} | {fmt(x['deliveries_per_s'])} | {fmt(x['server_cpu_percent'], 1)} | "
                f"{fmt(x['deliveries_per_cpu_s'])} | {ratio(lc.get('deliveries_per_cpu_s'), x['deliveries_per_cpu_s'])} | "
                f"{fmt(x['p50_ms'], 1)} | {fmt(x['p99_ms'], 1)} | {fmt(x['p999_ms'], 1)} | "
                f"{ratio(lc.get('p99_ms'), x['p99_ms'])} | {fmt(x['gaps'])} |")
        add("")

    t = r.get("tls") or {}
    if t.get("plain") and t.get("tls"):
        p, q = t["plain"], t["tls"]
        add(f"## TLS: the headline over wss:// against ws://, livecast, {fmt(p.get('connections'))} subscribers")
        add("")
        add("Same workload back to back in this run; the load generator decrypts on the same machine, so the "
            "ratios (TLS / plain) are the result, not the absolute numbers.")
        add("")
        add("| | connected | deliveries/s | server CPU % | server CPU us per delivery | p50 ms | p99 ms | server RSS KiB |")
        add("|---|---|---|---|---|---|---|---|")
        for name, x in (("ws:// (plain TCP)", p), ("wss:// (TLS)", q)):
            add(f"| {name} | {fmt(x['connected'])} | {fmt(x['deliveries_per_s'])} | {fmt(x['server_cpu_percent'], 1)} | "
                f"{fmt(x['server_cpu_us_per_delivery'], 2)} | {fmt(x['p50_ms'], 2)} | {fmt(x['p99_ms'], 2)} | "
                f"{fmt(x['server_rss_kib'])} |")
        add(f"| TLS / plain | | {ratio(q['deliveries_per_s'], p['deliveries_per_s'])} | "
            f"{ratio(q['server_cpu_percent'], p['server_cpu_percent'])} | "
            f"{ratio(q['server_cpu_us_per_delivery'], p['server_cpu_us_per_delivery'])} | "
            f"{ratio(q['p50_ms'], p['p50_ms'])} | {ratio(q['p99_ms'], p['p99_ms'])} | "
            f"{ratio(q['server_rss_kib'], p['server_rss_kib'])} |")
        add("")

    a = r["A"]
    if a:
        add("## A: memory per idle subscribed connection")
        add("")
        add("Slope of server RSS over the connection counts below (least squares); kernel socket memory "
            "(/proc/net/sockstat TCP mem, both ends of each loopback connection) separately.")
        add("")
        add("| server | connections | RSS KiB at each | KiB per connection | livecast / this | kernel TCP KiB per connection |")
        add("|---|---|---|---|---|---|")
        lc = a.get("livecast", {}).get("rss_kib_per_connection")
        for s in servers_in(a):
            x = a[s]
            counts = ", ".join(fmt(p["connections"]) for p in x["points"])
            rss = ", ".join(fmt(p["rss_kib"]) for p in x["points"])
            add(f"| {NAMES[s]} | {counts} | {rss} | {fmt(x['rss_kib_per_connection'], 2)} | "
                f"{ratio(lc, x['rss_kib_per_connection'])} | {fmt(x['tcp_mem_kib_per_connection'], 2)} |")
        add("")

    b = r["B"]
    if b:
        add("## B: fan-out throughput, offered load doubled each step up to saturation")
        add("")
        add("| workload | server | saturation deliveries/s | livecast / this | deliveries per CPU-s there | livecast / this | past the peak (2x, 4x its offered load) | steps (offered -> delivered, p99 ms) |")
        add("|---|---|---|---|---|---|---|---|")
        for key in sorted(b, key=b_order):
            shape, payload = key.split("/")
            label = ("1 topic" if shape == "one" else "many topics x 100") + f", {payload} B"
            lc = b[key].get("livecast", {})
            for s in servers_in(b[key]):
                x = b[key][s]
                steps = "; ".join(f"{fmt(st['offered_per_s'])} -> {fmt(st['deliveries_per_s'])} ({fmt(st['p99_ms'], 0)})"
                                  for st in x["steps"])
                add(f"| {label} | {NAMES[s]} | {fmt(x['saturation_per_s'])} | {ratio(lc.get('saturation_per_s'), x['saturation_per_s'])} | "
                    f"{fmt(x['deliveries_per_cpu_s_at_saturation'])} | "
                    f"{ratio(lc.get('deliveries_per_cpu_s_at_saturation'), x['deliveries_per_cpu_s_at_saturation'])} | "
                    f"{', '.join(f'{100 * v:.0f}%' for v in x.get('retained_past_peak', [])) or '-'} | {steps} |")
        add("")

    c = r["C"]
    if c:
        add("## C: latency at 50% and 80% of each server's own saturation (1 topic, 100 B)")
        add("")
        add("| server | load | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | gaps |")
        add("|---|---|---|---|---|---|---|---|")
        for s in servers_in(c):
            for load in ("50", "80"):
                x = c[s].get(load)
                if x:
                    add(f"| {NAMES[s]} | {load}% of {fmt(x['saturation_per_s'])} | {fmt(x['deliveries_per_s'])} | "
                        f"{fmt(x['p50_ms'], 1)} | {fmt(x['p99_ms'], 1)} | {fmt(x['p999_ms'], 1)} | {fmt(x['max_ms'], 1)} | {fmt(x['gaps'])} |")
        add("")

    d = r.get("D") or {}
    if d:
        n = next(iter(d.values())).get("connections")
        add(f"## D: connection capacity, {fmt(n)} connections over 3 instances sharing one Redis, 4 broadcasts/s")
        add("")
        add("livecast: 3 processes with the Redis backend. Socket.IO 4.8: 3 instances with @socket.io/redis-adapter "
            "(`redis` client). One instance publishes; the others deliver what Redis fans out. CPU and RSS are summed "
            "over the 3 processes, CPU over the measurement window.")
        add("")
        add("| server | connections | subscribed | failed | closed | deliveries/s | p50 ms | p99 ms | max ms | gaps (lost) | server CPU s (sum) | server CPU % (sum) | RSS KiB (sum) |")
        add("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for s in servers_in(d):
            x = d[s]
            add(f"| {NAMES[s]} | {fmt(x['connections'])} | {fmt(x['subscribed'])} | {fmt(x['failed'])} | {fmt(x['closed'])} | "
                f"{fmt(x['deliveries_per_s'])} | {fmt(x['p50_ms'], 1)} | {fmt(x['p99_ms'], 1)} | {fmt(x['max_ms'], 1)} | "
                f"{fmt(x['gaps'])} | {fmt(x.get('server_cpu_s'), 2)} | {fmt(x['server_cpu_percent'], 1)} | "
                f"{fmt(x['server_rss_kib'])} |")
        add("")

    e = r["E"]
    if e:
        add("## E: the Redis hop (livecast-bench-redis-hop)")
        add("")
        add("```json")
        add(json.dumps(e, indent=1))
        add("```")
        add("")

    if r.get("F"):
        lines += stalled_readers.markdown(r["F"])

    g = r.get("G")
    if g:
        add(f"## G, reconnect storm: {fmt(g['connections'])} clients on 1 topic at {fmt(g['rate'])} publications/s, livecast")
        add("")
        add("Every client drops its connection at once (TCP reset) and reconnects, subscribing with `recover` from the "
            "epoch and offset it last saw (at most 256 reconnects per load-generator process between connect and "
            "reply). Wall time: from the drop until every client is resubscribed and caught up (has the publications up "
            "to the head its reply named, and one past its recover offset). Server CPU: utime+stime over that time, "
            "the steady fan-out included; *excess* subtracts the warm-up's CPU rate over the same time.")
        add("")
        add("| run | wall s | server CPU s | excess CPU s | steady CPU % | reconnected | resubscribed (recovered) | "
            "not recovered | caught up | gaps | duplicates | failed | resubscribe p50 / p99 ms | caught up p50 / p99 ms |")
        add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for i, x in enumerate(g["runs"]):
            rs, cu = x.get("resubscribe_ms") or {}, x.get("catch_up_ms") or {}
            add(f"| {i + 1} | {fmt(x.get('storm_wall_s'), 2)} | {fmt(x.get('storm_server_cpu_s'), 2)} | "
                f"{fmt(x.get('storm_server_cpu_excess_s'), 2)} | {fmt(x.get('steady_server_cpu_percent'), 1)} | "
                f"{fmt(x.get('reconnected'))} | {fmt(x.get('resubscribed'))} | {fmt(x.get('not_recovered'))} | "
                f"{fmt(x.get('caught_up'))} | {fmt(x.get('gaps'))} | {fmt(x.get('duplicates'))} | {fmt(x.get('failed'))} | "
                f"{fmt(rs.get('p50'), 1)} / {fmt(rs.get('p99'), 1)} | {fmt(cu.get('p50'), 1)} / {fmt(cu.get('p99'), 1)} |")
        w, c, e = g["storm_wall_s"], g["storm_server_cpu_s"], g["storm_server_cpu_excess_s"]
        add(f"| median (min-max) | {fmt(w['median'], 2)} ({fmt(w['min'], 2)}-{fmt(w['max'], 2)}) | "
            f"{fmt(c['median'], 2)} ({fmt(c['min'], 2)}-{fmt(c['max'], 2)}) | "
            f"{fmt(e['median'], 2)} ({fmt(e['min'], 2)}-{fmt(e['max'], 2)}) | | | | | | | | | | |")
        add("")

    g = r.get("aggregator")
    if g:
        add(f"## Aggregator (livecast-bench-aggregator): record() cost, median of {g['repetitions']} x {fmt(g['events'])} events")
        add("")
        add("| threads | livecast ns/event | naive ns/event | floor ns/event | livecast / naive | livecast / floor |")
        add("|---|---|---|---|---|---|")
        for v in g["record"]:
            add(f"| {v['variant']} | {fmt(v['livecast']['ns_per_event'], 1)} | {fmt(v['naive']['ns_per_event'], 1)} | "
                f"{fmt(v['floor']['ns_per_event'], 1)} | {v['ratio_naive']:.2f}x | {v['ratio_floor']:.2f}x |")
        p = g["paced"]
        add("")
        add(f"At {fmt(p['offered_rate'])} events/s over {p['metrics']} metrics: process {p['process_cpu_percent']:.1f}% of one core, "
            f"recording thread {p['recording_cpu_percent']:.1f}%, rest {p['rest_cpu_percent']:.1f}%; "
            f"{fmt(p['recorded'])} of {fmt(p['issued'])} events recorded in {p['wall_s']:.1f} s.")
        add("")
        add("| distribution | accuracy | worst relative error | buckets | within |")
        add("|---|---|---|---|---|")
        for q in g["quantiles"]:
            add(f"| {q['distribution']} | {q['accuracy'] * 100:.1f}% | {q['worst'] * 100:.3f}% | {q['buckets']} | "
                f"{'yes' if q['within'] else 'no'} |")
        add("")

    t = r.get("targets")
    if t:
        add("## The issue's targets, as measured in this run")
        add("")
        add("| target | measured | holds |")
        add("|---|---|---|")
        for row in t:
            add(f"| {row['target']} | {row['measured']} | {'yes' if row['holds'] else 'no'} |")
        add("")
    return "\n".join(lines)


def targets(r):
    out = []
    h = r["headline"]
    lc = h.get("livecast")

    def check(name, a, b, factor, higher_is_better=True):
        if a is None or b is None or not b:
            return
        v = a / b
        out.append({"target": name, "measured": f"{v:.2f}x",
                    "holds": v >= factor if higher_is_better else v <= factor})

    if lc:
        for peer, factor in (("socketio", 2.0), ("ws", 1.5)):
            if peer in h:
                check(f"deliveries per CPU-s >= {factor}x {NAMES[peer]}", lc["deliveries_per_cpu_s"],
                      h[peer]["deliveries_per_cpu_s"], factor)
        for peer, factor in (("socketio", 0.4), ("ws", 1.0)):
            if peer in h:
                check(f"p99 <= {factor}x {NAMES[peer]}", lc["p99_ms"], h[peer]["p99_ms"], factor, False)
    # A Socket.IO front end moved onto livecast unchanged: the same clients,
    # framing and events as against Socket.IO itself (issue 13).
    sio = h.get("livecast-sio")
    if sio and "socketio" in h:
        check("Socket.IO protocol: deliveries per CPU-s >= 2x Socket.IO 4.8", sio["deliveries_per_cpu_s"],
              h["socketio"]["deliveries_per_cpu_s"], 2.0)
        check("Socket.IO protocol: p99 <= 0.5x Socket.IO 4.8", sio["p99_ms"], h["socketio"]["p99_ms"], 0.5, False)
    one = r["B"].get("one/100", {})
    if "livecast" in one:
        node = [one[p]["saturation_per_s"] for p in ("ws", "socketio") if p in one]
        if node:
            check("saturation >= 1.5x the better Node peer (1 topic, 100 B)", one["livecast"]["saturation_per_s"],
                  max(node), 1.5)
        retained = one["livecast"].get("retained_past_peak", [])[:2]
        if len(retained) == 2:
            # Issue 15: past saturation a broadcast server sheds by its
            # slow-consumer policy and holds near its peak.
            out.append({"target": "past saturation: delivered at 2x and 4x the peak's offered load >= 90% of the peak (1 topic, 100 B)",
                        "measured": ", ".join(f"{100 * v:.0f}%" for v in retained), "holds": min(retained) >= 0.9})
    a = r["A"].get("livecast")
    if a and a["rss_kib_per_connection"] is not None:
        # Issue 15's target (issue 5 asked for 6 KiB).
        out.append({"target": "<= 1.5 KiB RSS per idle subscribed connection",
                    "measured": f"{a['rss_kib_per_connection']:.2f} KiB", "holds": a["rss_kib_per_connection"] <= 1.5})
    if r.get("F"):
        out += stalled_readers.targets(r["F"])
    d = (r.get("D") or {}).get("livecast")
    if d and d.get("p99_ms") is not None:
        held = (d["subscribed"] or 0) >= (d["connections"] or 0)
        out.append({"target": f"{fmt(d['connections'])} connections on 3 instances, p99 <= 47 ms, nothing lost",
                    "measured": f"{fmt(d['subscribed'])} held, p99 {d['p99_ms']:.1f} ms, {d['gaps']} lost",
                    "holds": held and d["p99_ms"] <= 47 and d["gaps"] == 0})
    g = r.get("G")
    if g and g["storm_server_cpu_s"]["median"] is not None:
        cpu, wall = g["storm_server_cpu_s"], g["storm_wall_s"]
        runs = len(g["runs"])
        spread = f" ({fmt(cpu['min'], 2)}-{fmt(cpu['max'], 2)})" if runs > 1 else ""
        out.append({"target": f"{fmt(g['connections'])} clients reconnecting with recover at once: all resubscribed and "
                              "caught up within <= 2 s server CPU",
                    "measured": f"median of {runs}: {cpu['median']:.2f} s server CPU{spread}, {wall['median']:.2f} s wall; "
                                f"caught up {fmt(g['caught_up'])} of {fmt((g['connections'] or 0) * runs)}, "
                                f"not recovered {fmt(g['not_recovered'])}, gaps {fmt(g['gaps'])}",
                    "holds": g["all_caught_up"] and cpu["median"] <= 2 and not g["not_recovered"] and not g["gaps"]})
    return out


def plots(r, histograms, outdir):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("report.py: gnuplot not found (apt-get install gnuplot-nox): plots skipped", file=sys.stderr)
        return []
    made = []
    data = os.path.join(outdir, "plots")
    os.makedirs(data, exist_ok=True)
    script = ["set terminal pngcairo size 900,560 noenhanced" if _has_cairo(gnuplot) else "set terminal png size 900,560",
              "set grid", "set key top left"]

    # Latency distribution at the headline workload: the share of deliveries
    # at or under each latency.
    series = []
    for s in SERVERS:
        hist = histograms.get(s)
        if not hist:
            continue
        total = sum(c for _, c in hist)
        path = os.path.join(data, f"latency_{s}.dat")
        with open(path, "w") as f:
            seen = 0
            for us, count in hist:
                seen += count
                f.write(f"{us / 1000.0} {seen / total}\n")
        series.append(f"'{path}' using 1:2 with steps lw 2 title '{NAMES[s]}'")
    if series:
        png = os.path.join(outdir, "latency.png")
        script += [f"set output '{png}'", "set logscale x", "set xlabel 'latency from intended publication time (ms)'",
                   "set ylabel 'share of deliveries'", "set title 'Headline workload: latency distribution'",
                   "plot " + ", ".join(series), "unset logscale x"]
        made.append(png)

    # Deliveries/s against offered load, one panel per B workload.
    if r["B"]:
        png = os.path.join(outdir, "throughput.png")
        keys = sorted(r["B"], key=b_order)
        cols = 2 if len(keys) > 1 else 1
        rows = (len(keys) + cols - 1) // cols
        script += [f"set output '{png}'", "set terminal pngcairo size 1200,800 noenhanced" if _has_cairo(gnuplot) else "",
                   f"set multiplot layout {rows},{cols} title 'Deliveries/s against offered load'"]
        for key in keys:
            shape, payload = key.split("/")
            series = []
            for s in SERVERS:
                x = r["B"][key].get(s)
                if not x:
                    continue
                path = os.path.join(data, f"throughput_{shape}_{payload}_{s}.dat")
                with open(path, "w") as f:
                    for st in x["steps"]:
                        f.write(f"{st['offered_per_s'] / 1000.0} {(st['deliveries_per_s'] or 0) / 1000.0}\n")
                series.append(f"'{path}' using 1:2 with linespoints lw 2 title '{NAMES[s]}'")
            series.append("x with lines dt 2 lc rgb 'gray' title 'offered'")
            title = ("1 topic" if shape == "one" else "100-subscriber topics") + f", {payload} B"
            script += ["set logscale x", f"set title '{title}'", "set xlabel 'offered (k deliveries/s)'",
                       "set ylabel 'delivered (k/s)'", "plot " + ", ".join(series)]
        script += ["unset multiplot", "unset logscale x",
                   "set terminal pngcairo size 900,560 noenhanced" if _has_cairo(gnuplot) else ""]
        made.append(png)

    # Server RSS against connections (scenario A).
    if r["A"]:
        png = os.path.join(outdir, "rss.png")
        series = []
        for s in SERVERS:
            x = r["A"].get(s)
            if not x:
                continue
            path = os.path.join(data, f"rss_{s}.dat")
            with open(path, "w") as f:
                for p in x["points"]:
                    if p["rss_kib"] is not None:
                        f.write(f"{p['connections']} {p['rss_kib'] / 1024.0}\n")
            series.append(f"'{path}' using 1:2 with linespoints lw 2 title '{NAMES[s]}'")
        script += [f"set output '{png}'", "set title 'Server RSS against idle subscribed connections'",
                   "set xlabel 'connections'", "set ylabel 'RSS (MiB)'", "set yrange [0:*]", "plot " + ", ".join(series)]
        made.append(png)

    path = os.path.join(data, "plots.gp")
    with open(path, "w") as f:
        f.write("\n".join(line for line in script if line) + "\n")
    done = subprocess.run([gnuplot, path], capture_output=True, text=True)
    if done.returncode != 0:
        print("report.py: gnuplot failed:\n" + done.stderr, file=sys.stderr)
        return []
    return made


def _has_cairo(gnuplot):
    try:
        done = subprocess.run([gnuplot, "-e", "set terminal"], capture_output=True, text=True, timeout=10)
        return "pngcairo" in done.stdout + done.stderr
    except (OSError, subprocess.SubprocessError):
        return False


def node_version():
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def peer_versions():
    """The versions npm ci installed, which the lockfile pins."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = {}
    for name in ("socket.io", "ws", "@socket.io/redis-adapter", "redis"):
        try:
            with open(os.path.join(here, "peers", "node_modules", name, "package.json")) as f:
                out[name] = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            pass
    return out


def load_average():
    """The 1, 5 and 15-minute load averages as the report is written: how busy the shared machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--mode", default="full")
    parser.add_argument("--livecast-threads", default="1")
    args = parser.parse_args()
    rows = load(os.path.join(args.dir, "raw.jsonl"))
    r, histograms = build(rows)
    r["meta"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": args.mode,
        "cores": os.cpu_count(),
        "kernel": platform.platform(),
        "livecast_threads": args.livecast_threads,
        "node": node_version(),
        "peers": peer_versions(),
        "load_average": load_average(),
    }
    r["targets"] = targets(r)
    r["plots"] = [os.path.basename(p) for p in plots(r, histograms, args.dir)]
    with open(os.path.join(args.dir, "results.json"), "w") as f:
        json.dump(r, f, indent=1)
    md = markdown(r)
    for p in r["plots"]:
        md += f"\n![{p}]({p})\n"
    with open(os.path.join(args.dir, "results.md"), "w") as f:
        f.write(md)


if __name__ == "__main__":
    main()
