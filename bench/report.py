#!/usr/bin/env python3
"""bench/report.py — turn bench/run's measurements into a table and results.json.

usage: report.py MEASUREMENTS.jsonl OUT.json [OUT2.json ...]  < run-metadata.json

MEASUREMENTS.jsonl has one JSON object per line, written by bench/run:
  {"kind":"gen"|"import"|"start"|"stop"|"crash"|"rss_end"|"wrk", ...}
The run's metadata (mode, sizes, machine, ...) comes on stdin. Prints a Markdown table
on stdout and writes the same numbers, with every raw run, to each OUT file.

Ratios: each wrk test ran REPS times as an (nginx, recd) pair, back to back; the ratio
reported is the median of the per-pair ratios recd/nginx (pairs share the machine's
momentary noise); the ratio of the medians is in the JSON too."""
import json
import statistics
import sys

TARGETS = {
    "recs_ratio": 0.5,        # serving throughput >= 0.5 x nginx
    "recs_p99_ms": 10.0,      # p99 <= 10 ms
    "event_ratio": 0.4,       # single-event POST >= 0.4 x nginx
    "batch_events_s": 250e3,  # batched, durable
    "import_events_s": 1e6,
    "rss_gb": 1.5,            # at 1M users / 100k items / 20M events
    "restart_s": 10.0,
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    meas = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    meta = json.load(sys.stdin)
    outs = sys.argv[2:]
    res = {"meta": meta, "targets": TARGETS, "raw": meas}

    imports = [m for m in meas if m["kind"] == "import"]
    for m in imports:
        m["events_s"] = m["accepted"] / m["import_seconds"] if m["import_seconds"] else None
        m["wall_events_s"] = m["accepted"] / m["wall_seconds"] if m["wall_seconds"] else None
    res["import"] = {
        "runs": len(imports),
        "events_s_median": med([m["events_s"] for m in imports]),
        "wall_events_s_median": med([m["wall_events_s"] for m in imports]),
        "seconds_median": med([m["import_seconds"] for m in imports]),
        "rejected": sum(m["rejected"] for m in imports),
        "events_s": [m["events_s"] for m in imports],
    }
    starts = [m for m in meas if m["kind"] == "start"]
    clean = [m for m in starts if m["label"] not in ("after a crash", "after kill -9")]
    kill9 = next((m for m in starts if m["label"] == "after kill -9"), None)
    res["restart"] = {
        "runs": [m["seconds"] for m in clean],
        "seconds_median": med([m["seconds"] for m in clean]),
        "after_kill9_seconds": kill9["seconds"] if kill9 else None,
        "stop_seconds_median": med([m["seconds"] for m in meas if m["kind"] == "stop"]),
    }
    rss_start = med([m["rss_kb"] for m in clean])
    end = next((m for m in meas if m["kind"] == "rss_end"), {})
    res["rss"] = {"loaded_kb": rss_start, "end_kb": end.get("rss_kb"), "peak_kb": end.get("hwm_kb")}
    res["memory"] = {m["label"]: m for m in meas if m["kind"] == "memory" and m["parts"]}
    res["crashes"] = [m for m in meas if m["kind"] == "crash"]

    tests = {}
    for m in meas:
        if m["kind"] != "wrk":
            continue
        t = tests.setdefault(m["test"], {"runs": []})
        w = m["wrk"]
        r = {"server": m["server"], "rep": m["rep"], "threads": m["threads"], "conns": m["conns"],
             "alive_after": m["alive_after"]}
        if w:
            s = w["duration_us"] / 1e6
            ok = w["requests"] - w["errors"]["status"]
            r.update(rps=w["requests"] / s, ok_rps=ok / s, p50_ms=w["latency_us"]["p50"] / 1e3,
                     p99_ms=w["latency_us"]["p99"] / 1e3, p999_ms=w["latency_us"]["p999"] / 1e3,
                     max_ms=w["latency_us"]["max"] / 1e3, errors=w["errors"], requests=w["requests"])
            if m["test"] == "batch":
                r["events_s"] = ok * w["batch"] / s
        t["runs"].append(r)
    for name, t in tests.items():
        for srv in ("recd", "nginx"):
            rs = [r for r in t["runs"] if r["server"] == srv]
            t[srv] = {
                "rps_median": med([r.get("ok_rps") for r in rs]),
                "p50_ms_median": med([r.get("p50_ms") for r in rs]),
                "p99_ms_median": med([r.get("p99_ms") for r in rs]),
                "p999_ms_median": med([r.get("p999_ms") for r in rs]),
                "errors_total": sum(sum(r["errors"].values()) for r in rs if "errors" in r),
                "status_errors_total": sum(r["errors"]["status"] for r in rs if "errors" in r),
                "failed_runs": sum(1 for r in rs if "rps" not in r),
                "unhealthy_after": sum(1 for r in rs if not r["alive_after"]) if srv == "recd" else 0,
            }
            if name == "batch":
                t[srv]["events_s_median"] = med([r.get("events_s") for r in rs])
        pairs = {}
        for r in t["runs"]:
            pairs.setdefault(r["rep"], {})[r["server"]] = r.get("ok_rps")
        ratios = [p["recd"] / p["nginx"] for p in pairs.values()
                  if p.get("recd") is not None and p.get("nginx")]
        t["pair_ratios"] = ratios
        t["ratio"] = med(ratios)
        rm, nm = t["recd"]["rps_median"], t["nginx"]["rps_median"]
        t["ratio_of_medians"] = rm / nm if rm is not None and nm else None
    res["tests"] = tests

    full = meta["mode"] == "full"

    def verdict(ok, only_full=False):
        if ok is None:
            return "no data"
        s = "met" if ok else "MISSED"
        return s if full or not only_full else s + " (at this size; target is for --full)"

    rows = []

    def fmt(x, unit="", nd=0):
        if x is None:
            return "—"
        if unit == "ms":
            return f"{x:.2f} ms"
        if unit == "x":
            return f"{x:.3f}×" if x < 0.1 else f"{x:.2f}×"
        return f"{x:,.{nd}f}{unit}"

    def errs(name, srv="recd"):
        t = tests.get(name)
        if not t:
            return ""
        e = t[srv]["errors_total"]
        bad = t[srv]["failed_runs"]
        u = t[srv].get("unhealthy_after", 0)
        s = []
        if e:
            s.append(f"{e} errors")
        if bad:
            s.append(f"{bad} runs without result")
        if u:
            s.append(f"unhealthy after {u} runs")
        return ", ".join(s)

    def test_row(name, label, target_label, ok):
        t = tests.get(name)
        if not t:
            return
        rows.append((label, fmt(t["recd"]["rps_median"], " req/s"), fmt(t["nginx"]["rps_median"], " req/s"),
                     fmt(t["ratio"], "x"), fmt(t["recd"]["p50_ms_median"], "ms"), fmt(t["recd"]["p99_ms_median"], "ms"),
                     fmt(t["nginx"]["p99_ms_median"], "ms"), target_label, ok, errs(name)))

    rec = tests.get("recs")
    if rec:
        ok_r = rec["ratio"] is not None and rec["ratio"] >= TARGETS["recs_ratio"]
        ok_p = rec["recd"]["p99_ms_median"] is not None and rec["recd"]["p99_ms_median"] <= TARGETS["recs_p99_ms"]
        test_row("recs", "GET recs n=10, -t2 -c64", "≥ 0.5× nginx; p99 ≤ 10 ms",
                 f"ratio {verdict(ok_r if rec['ratio'] is not None else None)}; p99 {verdict(ok_p)}")
    if "lat1" in tests:
        test_row("lat1", "GET recs n=10, 1 connection", "(p50/p99 reported)", "")
    if "http" in tests:
        test_row("http", "GET /api/v1/health, -t2 -c64 (HTTP ceiling)", "(reported)", "")
    ev = tests.get("event")
    if ev:
        test_row("event", "POST 1 event, -t2 -c64", "≥ 0.4× nginx",
                 verdict(None if ev["ratio"] is None else ev["ratio"] >= TARGETS["event_ratio"]))
    mx = tests.get("mixed")
    if mx:  # the issue: "at the serving target, p99 <= 10 ms for both" (wrk gives one p99 for all)
        ok_r = mx["ratio"] is not None and mx["ratio"] >= TARGETS["recs_ratio"]
        ok_p = mx["recd"]["p99_ms_median"] is not None and mx["recd"]["p99_ms_median"] <= TARGETS["recs_p99_ms"]
        test_row("mixed", "mixed 90% GET / 10% POST, -c64", "≥ 0.5× nginx; p99 ≤ 10 ms (all requests)",
                 f"ratio {verdict(ok_r if mx['ratio'] is not None else None)}; p99 {verdict(ok_p)}")
    mr, mw = tests.get("mixed_reads"), tests.get("mixed_writes")
    if mr and mw:  # the same mix, reads and writes measured apart: "p99 <= 10 ms for both"
        pr, pw = mr["recd"]["p99_ms_median"], mw["recd"]["p99_ms_median"]
        ok = None if pr is None or pw is None else pr <= TARGETS["recs_p99_ms"] and pw <= TARGETS["recs_p99_ms"]
        rr, rw = mr["recd"]["rps_median"], mw["recd"]["rps_median"]
        share = rw / (rr + rw) if rr and rw else None
        for t, label in ((mr, "mixed apart: reads, -t1 -c58"), (mw, "mixed apart: writes, -t1 -c6")):
            name = "mixed_reads" if t is mr else "mixed_writes"
            test_row(name, label, "p99 ≤ 10 ms for both",
                     ("p99 " + verdict(ok)) if t is mr else
                     (f"writes {share:.0%} of requests" if share is not None else ""))
    b = tests.get("batch")
    if b:
        e = b["recd"].get("events_s_median")
        rows.append(("POST 1,000-event batches, -t2 -c16", fmt(e, " events/s"),
                     fmt(b["nginx"].get("events_s_median"), " events/s"), fmt(b["ratio"], "x"),
                     fmt(b["recd"]["p50_ms_median"], "ms"), fmt(b["recd"]["p99_ms_median"], "ms"),
                     fmt(b["nginx"]["p99_ms_median"], "ms"), "≥ 250k durable events/s",
                     verdict(None if e is None else e >= TARGETS["batch_events_s"]), errs("batch")))
    if "recs_ials" in tests:
        test_row("recs_ials", "GET recs n=10, iALS in production", "(reported)", "")
    rr = tests.get("recs_ranker")
    if rr:
        ri = tests.get("recs_ials")
        cost = None
        if ri and ri["recd"]["rps_median"] and rr["recd"]["rps_median"]:
            cost = rr["recd"]["rps_median"] / ri["recd"]["rps_median"]
        test_row("recs_ranker", "GET recs n=10, ranker in production", "ranker ≥ 0.5× iALS-only throughput",
                 verdict(None if cost is None else cost >= 0.5)
                 + ("" if cost is None else f" ({cost:.2f}× iALS-only)"))
    imp = res["import"]
    rows.append((f"recd import ({meta['events']:,} events, {imp['runs']} run{'s' if imp['runs'] != 1 else ''})", fmt(imp["events_s_median"], " events/s"),
                 "", "", "", "", "", "≥ 1M events/s",
                 verdict(None if imp["events_s_median"] is None else imp["events_s_median"] >= TARGETS["import_events_s"]),
                 (f"runs: {', '.join(fmt(x, '') for x in imp['events_s'])}; " if imp["runs"] > 1 else "")
                 + f"wall incl. open/close: {fmt(imp['wall_events_s_median'], ' events/s')}; {imp['seconds_median']:.2f} s"))
    rss = res["rss"]
    rb = rss["loaded_kb"] * 1024 if rss["loaded_kb"] else None
    if rb is None:
        rv = "no data"
    elif rb <= TARGETS["rss_gb"] * 1e9:
        rv = verdict(True, True)
    elif rb <= TARGETS["rss_gb"] * 2 ** 30:
        rv = (f"borderline: {rb / 1e9:.2f} GB > 1.5 GB, {rb / 2 ** 30:.2f} GiB ≤ 1.5 GiB"
              + ("" if full else " (target is for --full)"))
    else:
        rv = verdict(False, True)
    rows.append(("RSS, loaded state (after start)", fmt(rss["loaded_kb"] / 1024 if rss["loaded_kb"] else None, " MiB"),
                 "", "", "", "", "", "≤ 1.5 GB at 1M/100k/20M", rv,
                 f"end {fmt(rss['end_kb'] / 1024 if rss['end_kb'] else None, ' MiB')}, "
                 f"peak {fmt(rss['peak_kb'] / 1024 if rss['peak_kb'] else None, ' MiB')} (after the write tests)"))
    rs = res["restart"]
    rows.append(("restart (start → /health 200)", fmt(rs["seconds_median"], " s", 2), "", "", "", "", "", "≤ 10 s",
                 verdict(None if rs["seconds_median"] is None else rs["seconds_median"] <= TARGETS["restart_s"], True),
                 "runs: " + ", ".join(f"{x:.2f}" for x in rs["runs"]) + f" s; stop {fmt(rs['stop_seconds_median'], ' s', 2)}"))
    if rs["after_kill9_seconds"] is not None:
        rows.append(("restart after kill -9 (after the write tests)", fmt(rs["after_kill9_seconds"], " s", 2), "", "", "",
                     "", "", "≤ 10 s", verdict(rs["after_kill9_seconds"] <= TARGETS["restart_s"], True),
                     "crash recovery: newest snapshot + log replay"))

    hdr = ("measurement", "recd (median)", "nginx (median)", "ratio", "recd p50", "recd p99", "nginx p99", "target",
           "verdict", "notes")
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    m = meta
    head = (f"recd bench — mode {m['mode']}: {m['users']:,} users / {m['items']:,} items / {m['events']:,} events; "
            f"wrk {m['duration_s']} s × {m['reps']} pairs (nginx, recd alternating), medians; "
            f"body {m['body_bytes']} B; {m['machine']['nproc']} CPUs, {m['machine']['cpu']}; "
            f"{m['date']}; git {m['git_rev']}{' (dirty)' if m['git_dirty'] else ''}; run took {m['elapsed_s']:.0f} s")
    if m.get("git_dirty_files"):
        head += "\nuncommitted changes built into this recd: " + ", ".join(m["git_dirty_files"])
    table = head + "\n\n" + "\n".join(lines)
    if res["crashes"]:
        table += f"\n\nrecd CRASHED {len(res['crashes'])} time(s) during the run (exit statuses: " + \
                 ", ".join(str(c["status"]) for c in res["crashes"]) + "); see serve.log"
    pr = []
    for name, t in tests.items():
        pr.append(f"{name}: ratios per pair " + ", ".join(f"{x:.3f}" for x in t["pair_ratios"]) +
                  f"; ratio of medians {fmt(t['ratio_of_medians'], 'x')}")
    table += "\n\n" + "\n".join(pr)
    if res["memory"]:  # recd_memory_bytes{part}: the RSS by structure
        labels = list(res["memory"])
        names = list(res["memory"][labels[0]]["parts"])
        mt = ["| memory by part (MiB) | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
        for n in names:
            mt.append(f"| {n} | " + " | ".join(fmt(res['memory'][l]['parts'].get(n, 0) / 2 ** 20, '', 1) for l in labels) + " |")
        mt.append("| **total** | " + " | ".join(fmt(sum(res['memory'][l]['parts'].values()) / 2 ** 20, '', 1) for l in labels) + " |")
        mt.append("| resident when walked | " + " | ".join(fmt(res['memory'][l]['resident'] / 2 ** 20, '', 1) for l in labels) + " |")
        table += "\n\n" + "\n".join(mt)
    res["table_markdown"] = table
    print(table)
    for o in outs:
        with open(o, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
