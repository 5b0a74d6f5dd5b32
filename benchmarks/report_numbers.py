"""How report.py and its scenario modules read a livecast-loadgen line and
print numbers: milliseconds from microseconds, thousands separators, ratios."""


def ms(us):
    return None if us is None else us / 1000.0


def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}"
    return f"{v:,.0f}"


def ratio(a, b, digits=2):
    if not a or not b:
        return "-"
    return f"{a / b:.{digits}f}x"


def summary(result):
    """The fields of a livecast-loadgen line that the tables use."""
    lat = result.get("latency_us", {})
    server = result.get("server", {})
    return {
        "connected": result.get("connected"),
        "subscribed": result.get("subscribed"),
        "failed": result.get("failed"),
        "closed": result.get("closed"),
        "deliveries_per_s": result.get("deliveries_per_s"),
        "server_cpu_percent": server.get("cpu_percent"),
        "deliveries_per_cpu_s": server.get("deliveries_per_cpu_s"),
        "p50_ms": ms(lat.get("p50")),
        "p99_ms": ms(lat.get("p99")),
        "p999_ms": ms(lat.get("p999")),
        "max_ms": ms(lat.get("max")),
        "gaps": result.get("gaps"),
        "server_rss_kib": server.get("rss_kib_after"),
    }
