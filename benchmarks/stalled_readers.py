"""Scenario F of benchmarks/run, stalled readers: its results.json entry, its
section of results.md and its rows in the targets table (report.py calls these).

F runs in pairs on fresh servers with the same settings: the normal readers
(livecast-loadgen) alone, and beside clients that subscribed to every topic and
never read again (livecast-stalled-clients). Each pair gives the ratios; the
verdicts take the median p99 ratio over the pairs (a neighbour's load on a
shared machine moves one run's p99 by tens of percent) and the largest memory
per stalled connection (the bound must hold in every pair).
"""
import statistics
from collections import defaultdict

from report_numbers import fmt, ms, summary

P99_FACTOR = 1.2  # issue 11: the readers' p99 within 20% of a run without the stalled ones


def hand_off_high_water(send_queue_bytes):
    """The WebSocket transport's bytes on their way to the socket, beyond which
    it takes no more frames from the session: half the send queue, at most
    64 KiB (src/transport/websocket_writer.cpp, high_water_)."""
    return min(64 * 1024, max(send_queue_bytes // 2, 1))


def _run(params, lines):
    """One server's run from its lines: the load generator's, the stalled
    clients' and the server's own last --stats line."""
    run = {}
    for source, result in lines:
        if source == "loadgen":
            run.update(summary(result))
            server = result.get("server", {})
            run.update({
                "p90_ms": ms(result.get("latency_us", {}).get("p90")),
                "rss_kib_fresh": params.get("server_rss_kib_fresh"),
                "rss_kib_before_connect": server.get("rss_kib_before_connect"),
                "rss_kib_measure_start": server.get("rss_kib_measure_start"),
                "tcp_mem_kib": result.get("sockstat", {}).get("tcp_mem_kib"),
            })
        elif source == "stalled":
            run["stalled"] = result
        elif source == "server":
            run["server_metrics"] = result
    return run


def _ratio(a, b):
    return b / a if a and b is not None else None


def _pair(index, alone, beside):
    stalled = (beside.get("stalled") or {}).get("subscribed") or 0

    def per_stalled(a, b):
        return (b - a) / stalled if a is not None and b is not None and stalled else None

    return {
        "pair": index,
        "alone": alone,
        "with_stalled": beside,
        "stalled_subscribed": stalled,
        "p99_ratio": _ratio(alone.get("p99_ms"), beside.get("p99_ms")),
        "p50_ratio": _ratio(alone.get("p50_ms"), beside.get("p50_ms")),
        "deliveries_ratio": _ratio(alone.get("deliveries_per_s"), beside.get("deliveries_per_s")),
        # The steadier sign of what the stalled sessions cost: every
        # publication is still queued for them (and an older one dropped).
        "server_cpu_ratio": _ratio(alone.get("server_cpu_percent"), beside.get("server_cpu_percent")),
        # What the stalled connections added to the process: the same server
        # and readers at the end of the window, with them and without. Idle:
        # what they held once subscribed, before the first publication.
        "rss_kib_per_stalled": per_stalled(alone.get("server_rss_kib"), beside.get("server_rss_kib")),
        "rss_kib_per_stalled_idle": per_stalled(beside.get("rss_kib_fresh"), beside.get("rss_kib_before_connect")),
        "tcp_mem_kib_per_stalled": per_stalled(alone.get("tcp_mem_kib"), beside.get("tcp_mem_kib")),
    }


def summarise(lines):
    """lines: (params, result) of every raw.jsonl line of scenario F."""
    by_run = defaultdict(list)
    params = {}
    fresh = {}
    for p, result in lines:
        key = (p.get("pair", 0), p["run"])
        by_run[key].append((p["source"], result))
        if p["source"] == "loadgen":
            fresh[key] = p
        params = {k: v for k, v in p.items() if k not in ("pair", "run", "source", "server_rss_kib_fresh")}
    runs = {key: _run(fresh.get(key, {}), run_lines) for key, run_lines in by_run.items()}
    pairs = [_pair(i, runs.get((i, "alone"), {}), runs.get((i, "with_stalled"), {}))
             for i in sorted({key[0] for key in runs})]
    bound = params["send_queue_bytes"] + hand_off_high_water(params["send_queue_bytes"])

    def median(name):
        values = [p[name] for p in pairs if p[name] is not None]
        return statistics.median(values) if values else None

    def largest(name):
        values = [p[name] for p in pairs if p[name] is not None]
        return max(values) if values else None

    f = {
        "params": params,
        "pairs": pairs,
        "bound_kib_per_stalled": bound / 1024.0,
        "p99_ratio": median("p99_ratio"),
        "p50_ratio": median("p50_ratio"),
        "deliveries_ratio": median("deliveries_ratio"),
        "server_cpu_ratio": median("server_cpu_ratio"),
        "rss_kib_per_stalled": largest("rss_kib_per_stalled"),
        "rss_kib_per_stalled_idle": largest("rss_kib_per_stalled_idle"),
        "tcp_mem_kib_per_stalled": median("tcp_mem_kib_per_stalled"),
    }
    f["p99_within_factor"] = None if f["p99_ratio"] is None else f["p99_ratio"] <= P99_FACTOR
    f["rss_within_bound"] = (None if f["rss_kib_per_stalled"] is None
                             else f["rss_kib_per_stalled"] <= f["bound_kib_per_stalled"])
    return f


def _x(v):
    return "-" if v is None else f"{v:.2f}x"


def _yes_no(v):
    return "-" if v is None else ("yes" if v else "no")


def markdown(f):
    p = f["params"]
    out = [f"## F: stalled readers: {fmt(p['normal'])} normal readers, alone and beside {fmt(p['stalled'])} "
           "that never read", ""]
    out.append(
        f"livecast only. {p['topics']} topics x {p['rate']}/s, {p['payload']} B; every normal reader on one topic, "
        f"every stalled client on all {p['topics']} with a {p['receive_buffer']} B receive buffer. Server: send "
        f"queue {fmt(p['send_queue_bytes'])} B `{p['slow_consumer_policy']}`, hand-off high water "
        f"{fmt(hand_off_high_water(p['send_queue_bytes']))} B, socket send buffer {fmt(p['socket_send_buffer_bytes'])} B. "
        f"{len(f['pairs'])} pair(s) of runs, each on a fresh server, the order alternating. RSS in KiB: fresh server, "
        "once the stalled clients are subscribed (before the readers connect), at the window's end.")
    out.append("")
    out.append("| pair | run | readers subscribed | stalled subscribed | deliveries/s | p50 ms | p99 ms | p99.9 ms | "
               "max ms | gaps | server CPU % | RSS fresh / before readers / end | kernel TCP KiB | dropped | "
               "slow-consumer closes | sessions at end |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for pair in f["pairs"]:
        for run, label in (("alone", "readers alone"), ("with_stalled", "beside stalled")):
            x = pair[run]
            st = x.get("stalled") or {}
            m = x.get("server_metrics") or {}
            out.append(
                f"| {pair['pair'] + 1} | {label} | {fmt(x.get('subscribed'))} | {fmt(st.get('subscribed')) if st else '-'} | "
                f"{fmt(x.get('deliveries_per_s'))} | {fmt(x.get('p50_ms'), 1)} | {fmt(x.get('p99_ms'), 1)} | "
                f"{fmt(x.get('p999_ms'), 1)} | {fmt(x.get('max_ms'), 1)} | {fmt(x.get('gaps'))} | "
                f"{fmt(x.get('server_cpu_percent'), 1)} | {fmt(x.get('rss_kib_fresh'))} / "
                f"{fmt(x.get('rss_kib_before_connect'))} / {fmt(x.get('server_rss_kib'))} | {fmt(x.get('tcp_mem_kib'))} | "
                f"{fmt(m.get('dropped'))} | {fmt(m.get('slow_consumer_closes'))} | {fmt(m.get('sessions_active'))} |")
    out.append("")
    out.append("| pair | p99 beside / alone | p50 | deliveries/s | server CPU | server RSS KiB per stalled connection | "
               "of which idle | kernel TCP KiB per stalled connection |")
    out.append("|---|---|---|---|---|---|---|---|")
    for pair in f["pairs"]:
        out.append(f"| {pair['pair'] + 1} | {_x(pair['p99_ratio'])} | {_x(pair['p50_ratio'])} | "
                   f"{_x(pair['deliveries_ratio'])} | {_x(pair['server_cpu_ratio'])} | {fmt(pair['rss_kib_per_stalled'], 1)} | "
                   f"{fmt(pair['rss_kib_per_stalled_idle'], 1)} | {fmt(pair['tcp_mem_kib_per_stalled'], 1)} |")
    out.append("")
    out.append(f"- Normal readers' p99 beside stalled / alone, median over the pairs: **{_x(f['p99_ratio'])}** "
               f"(within {P99_FACTOR}x: {_yes_no(f['p99_within_factor'])}); p50 {_x(f['p50_ratio'])}; "
               f"deliveries/s {_x(f['deliveries_ratio'])}; server CPU {_x(f['server_cpu_ratio'])}.")
    out.append(f"- Server RSS per stalled connection, largest over the pairs: **{fmt(f['rss_kib_per_stalled'], 1)} KiB** "
               f"against the {f['bound_kib_per_stalled']:.0f} KiB the settings allow one session to hold (send queue + "
               f"hand-off high water; within: {_yes_no(f['rss_within_bound'])}), of which "
               f"{fmt(f['rss_kib_per_stalled_idle'], 1)} KiB before any publication. Kernel TCP memory (not in RSS) "
               f"per stalled connection: {fmt(f['tcp_mem_kib_per_stalled'], 1)} KiB.")
    out.append("")
    return out


def targets(f):
    rows = []
    if f["p99_ratio"] is not None:
        rows.append({"target": f"normal readers' p99 beside stalled ones <= {P99_FACTOR}x without them (median of pairs)",
                     "measured": _x(f["p99_ratio"]), "holds": f["p99_within_factor"]})
    if f["rss_kib_per_stalled"] is not None:
        rows.append({"target": "server RSS per stalled connection <= send queue + hand-off high water "
                               f"({f['bound_kib_per_stalled']:.0f} KiB)",
                     "measured": f"{f['rss_kib_per_stalled']:.1f} KiB", "holds": f["rss_within_bound"]})
    return rows
