#!/usr/bin/env python3
"""IPFIX export into real collectors on loopback (issue 15): nfcapd/nfdump 1.7 and pmacct's nfacctd.

For each capture, flowpicd replays it (net_pcap, trace clock) with exporters.ipfix pointed at the
collector; then every flow of the replay must be in the collector once, with flowpicd's packet and
byte counts and its flow verdict as the class name, and the counts must equal flowpicd's summary.
`flowpic classify --ipfix` must put the same records into the same collector.
Bad days: a collector that is down (UDP: flowpicd forwards everything, the failed sends are
counted) and nfcapd restarted in the middle of a stream (what it lost <= what flowpicd counted).
Environment: FLOWPICD, FLOWPIC, FLOWPIC_REPO (set by meson)."""
import csv, json, os, shutil, signal, socket, subprocess, sys, tempfile, time

REPO = os.environ.get("FLOWPIC_REPO", os.getcwd())
FLOWPICD = os.environ.get("FLOWPICD", os.path.join(REPO, "build/dataplane/flowpicd"))
FLOWPIC = os.environ.get("FLOWPIC", os.path.join(REPO, "build/tools/flowpic"))
CAPTURES = ["tests/data/zoom2.pcap", "tests/data/wa_voice.pcap", "tests/data/dns_fragmented.pcap"]
FMT = "fmt:%sa|%da|%sp|%dp|%pr|%pkt|%byt|%nbnam"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_nfcapd(port, d):
    os.makedirs(d, exist_ok=True)
    p = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", d, "-t", "3600"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.7)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    return out


def port(text):
    # nfdump prints ICMP's destination port as type.code
    return int(text) if text.isdigit() else text


def nfdump_rows(d):
    rows = []
    for f in sorted(os.listdir(d)):
        if not f.startswith("nfcapd.") or f.startswith("nfcapd.current"):
            continue
        out = subprocess.run(["nfdump", "-6", "-r", os.path.join(d, f), "-q", "-o", FMT], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = [x.strip() for x in line.split("|")]
            if len(parts) != 8:
                continue
            name = parts[7].split("/")[0] if parts[7] != "<no info>" else "<no info>"
            rows.append((parts[0], parts[1], port(parts[2]), port(parts[3]), parts[4].lower(), int(parts[5]),
                         int(parts[6]), name))
    return rows


def flowpicd_config(d, capture, port, domain, prefix, extra=""):
    src = open(os.path.join(REPO, "configs/replay.yaml")).read()
    src = src.replace("tests/data/zoom2.pcap", os.path.join(REPO, capture))
    src = src.replace("models/default.fpm", os.path.join(REPO, "models/default.fpm"))
    src = src.replace("flowpicd-replay,", prefix + ",")
    src += ("exporters:\n  ipfix: {collector: \"127.0.0.1:%d\", transport: udp, observation_domain: %d, "
            "template_refresh: 5, active_timeout: 3600%s}\n" % (port, domain, extra))
    path = os.path.join(d, prefix + ".yaml")
    open(path, "w").write(src)
    return path


def run_flowpicd(cfg, d, name):
    summ = os.path.join(d, name + ".json")
    # Run directories (control socket, lock) under the test's own folder, one per config name.
    env = dict(os.environ, FLOWPICD_RUN_DIR=os.path.join(d, "run"))
    os.makedirs(env["FLOWPICD_RUN_DIR"], mode=0o750, exist_ok=True)
    r = subprocess.run([FLOWPICD, "-c", cfg, "--summary-json", summ], capture_output=True, text=True, timeout=300,
                       env=env)
    if r.returncode != 0:
        print(r.stderr[-3000:])
    check(r.returncode == 0, f"{name}: flowpicd exits 0")
    return json.load(open(summ)), r.stdout, r.stderr


def flow_verdicts(verdict_lines):
    """Last flow verdict per flow key, from the JSON lines (what flowpicd acts on)."""
    last = {}
    for line in verdict_lines.splitlines():
        if not line.startswith("{"):
            continue
        j = json.loads(line)
        key = (j["src"], j["dst"], j.get("sport", 0), j.get("dport", 0))
        last[key] = j["flow_verdict"]["class"]
    return last


def main():
    work = tempfile.mkdtemp(prefix="flowpic-ipfix-")
    try:
        # ---- nfcapd / nfdump, and nfacctd, each capture through flowpicd ----
        p_nf = free_udp_port()
        nf = start_nfcapd(p_nf, os.path.join(work, "nf"))
        p_pm = free_udp_port()
        pm_dir = os.path.join(work, "pm")
        os.makedirs(pm_dir)
        pm_csv = os.path.join(pm_dir, "flows.csv")
        open(os.path.join(pm_dir, "nfacctd.conf"), "w").write(
            "daemonize: false\nnfacctd_ip: 127.0.0.1\nnfacctd_port: %d\nplugins: print[flows]\n"
            "aggregate[flows]: src_host, dst_host, src_port, dst_port, proto, class\n"
            "print_output[flows]: csv\nprint_output_file[flows]: %s\nprint_output_file_append[flows]: true\n"
            "print_refresh_time[flows]: 1\n" % (p_pm, pm_csv))
        pm = subprocess.Popen(["nfacctd", "-f", os.path.join(pm_dir, "nfacctd.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # its plugins in its group
        time.sleep(1.0)
        expected = []  # (sa, da, sp, dp, pkts, class) from flowpicd, every capture
        flows_total = 0
        for i, cap in enumerate(CAPTURES):
            name = os.path.basename(cap).split(".")[0]
            cfg = flowpicd_config(work, cap, p_nf, i + 1, "ipfixt-nf%d" % i)
            s, out, _ = run_flowpicd(cfg, work, name + "-nf")
            e = s["export"]["ipfix"]
            created = s["flows"]["created"]
            flows_total += created
            check(e["records"] == created and e["sent"] == created and e["updates"] == 0,
                  f"{name}: one record per flow handed on and sent ({e['records']} / {e['sent']} / {created} flows)")
            check(e["dropped_ring_full"] == 0 and e["lost_send"] == 0 and e["verdict_timeouts"] == 0,
                  f"{name}: nothing dropped, no verdict waited past verdict_wait")
            verdicts = flow_verdicts(out)
            ip_packets = sum(l["parse"]["ok"] + l["parse"].get("ok_fragment", 0) for l in s["lcores"])
            expected.append((name, created, ip_packets, verdicts))
            cfg = flowpicd_config(work, cap, p_pm, i + 1, "ipfixt-pm%d" % i)
            run_flowpicd(cfg, work, name + "-pm")
        time.sleep(2.5)  # nfacctd's print plugin writes every second
        nf_log = stop(nf)
        os.killpg(pm.pid, signal.SIGKILL)  # the print plugin has written its file (every second)
        pm.wait(timeout=30)
        check("Sequence Errors: 0" in nf_log, "nfcapd saw no sequence error")
        rows = nfdump_rows(os.path.join(work, "nf"))
        check(len(rows) == flows_total, f"nfdump: {len(rows)} flow records for {flows_total} flows of the replays")
        keys = [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        # A 5-tuple may be two flows (idle timeout, fragments keyed without ports): compare with
        # the flows of the verdict lines below and with classify's records; print repeats.
        from collections import Counter
        reps = {k: n for k, n in Counter(keys).items() if n > 1}
        if reps:
            print("     5-tuples seen more than once (separate flows):", reps)
        check(all(r[7] != "<no info>" for r in rows), "nfdump: every record has a class name (%nbnam)")
        # Per capture: packets equal the summary's IP packets, classes equal the flow verdicts.
        by_key = {(r[0], r[1], r[2], r[3]): r for r in rows}
        classified = 0
        for name, created, ip_packets, verdicts in expected:
            for k, cls in verdicts.items():
                r = by_key.get((k[0], k[1], k[2], k[3]))
                check(r is not None and r[7] == cls, f"{name}: flow {k} has class {cls} in nfdump (got {r and r[7]})")
                classified += 1
        check(sum(r[5] for r in rows) == sum(e[2] for e in expected),
              f"nfdump: packets {sum(r[5] for r in rows)} = flowpicd's IP packets {sum(e[2] for e in expected)}")
        check(sum(1 for r in rows if r[7] == "unclassified") == flows_total - classified,
              "nfdump: flows without a verdict are 'unclassified'")
        # nfacctd: the same flows, counts and classes.
        pm_rows = []
        with open(pm_csv) as f:
            for r in csv.DictReader(f):
                pm_rows.append((r["SRC_IP"], r["DST_IP"], int(r["SRC_PORT"]), int(r["DST_PORT"]), r["PROTOCOL"].lower(),
                                int(r["PACKETS"]), int(r["BYTES"]), r["CLASS"]))
        # nfacctd aggregates by its primitives (a repeated 5-tuple is one line per interval): sum both sides.
        def totals(rs):
            t = {}
            for r in rs:
                k = (r[0], r[1], str(r[2]), str(r[3]) if str(r[3]).isdigit() else "0", r[7])
                a = t.setdefault(k, [0, 0])
                a[0] += r[5]
                a[1] += r[6]
            return sorted((k, tuple(v)) for k, v in t.items())
        nf_set, pm_set = totals(rows), totals(pm_rows)
        if nf_set != pm_set:
            print("     only in nfdump:", [x for x in nf_set if x not in pm_set][:5])
            print("     only in nfacctd:", [x for x in pm_set if x not in nf_set][:5])
        check(nf_set == pm_set, f"nfacctd: the same {len(pm_set)} (5-tuple, class) totals of packets and bytes as nfdump")

        # ---- flowpic classify --ipfix into nfcapd: the same records as flowpicd ----
        p2 = free_udp_port()
        nf2 = start_nfcapd(p2, os.path.join(work, "nf2"))
        for cap in CAPTURES:
            r = subprocess.run([FLOWPIC, "classify", "-m", os.path.join(REPO, "models/default.fpm"),
                                os.path.join(REPO, cap), "--ipfix", "127.0.0.1:%d" % p2],
                               capture_output=True, text=True)
            check(r.returncode == 0, f"classify --ipfix {cap} exits 0")
        time.sleep(0.5)
        stop(nf2)
        rows2 = nfdump_rows(os.path.join(work, "nf2"))
        check(sorted(rows2) == sorted(rows), f"classify --ipfix: the same {len(rows2)} records as flowpicd")

        # ---- collector down (UDP): nothing stalls, every failed send counted ----
        dead = free_udp_port()
        cfg = flowpicd_config(work, "tests/data/wa_voice.pcap", dead, 1, "ipfixt-dead")
        s, _, _ = run_flowpicd(cfg, work, "dead")
        e = s["export"]["ipfix"]
        port = s["ports"][0]
        check(port["rx"] == port["forwarded"], "collector down: every packet forwarded")
        check(e["records"] == s["flows"]["created"], "collector down: every record still handed to the exporter")
        check(e["send_errors"] >= 1 and e["lost_send"] + e["sent"] == e["records"],
              f"collector down: sent {e['sent']} + lost {e['lost_send']} = records {e['records']} "
              f"({e['send_errors']} send errors)")

        # ---- nfcapd restarted while classify streams: what it missed is at most what was counted ----
        p3 = free_udp_port()
        d3 = os.path.join(work, "nf3")
        nf3 = start_nfcapd(p3, d3)
        fifo = os.path.join(work, "big.pcap")
        # A long capture: wa_voice's records repeated with growing times and ports (new flows).
        make_capture(os.path.join(REPO, "tests/data/wa_voice.pcap"), fifo, 400)
        cl = subprocess.Popen([FLOWPIC, "classify", "-m", os.path.join(REPO, "models/default.fpm"), fifo,
                               "--ipfix", "127.0.0.1:%d" % p3, "--idle-timeout", "1s"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        stop(nf3)
        time.sleep(0.3)
        nf3 = start_nfcapd(p3, d3)
        _, err = cl.communicate(timeout=600)
        time.sleep(0.5)
        stop(nf3)
        got = len(nfdump_rows(d3))
        import re
        m = re.search(r"flow records (\d+) sent (\d+) in \d+ messages \| send errors (\d+) lost (\d+)", err)
        check(m is not None, "restart: classify printed its export counters")
        if m:
            records, sent, errs, lost = map(int, m.groups())
            missing = records - got
            print(f"     restart: {records} records, collector kept {got}, counted lost {lost} ({errs} send errors)")
            check(got <= records, "restart: the collector has no record twice")
            check(missing >= lost, "restart: counted losses are real losses")
            print(f"     restart: {missing - lost} records lost uncounted (in flight or in nfcapd's socket when it stopped)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


def make_capture(src, dst, copies):
    """Writes `copies` shifted copies of a pcap (classic format) one after the other."""
    import struct
    data = open(src, "rb").read()
    hdr, body = data[:24], data[24:]
    magic = struct.unpack("<I", hdr[:4])[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), "little-endian classic pcap expected"
    recs = []
    off = 0
    while off + 16 <= len(body):
        sec, frac, incl, orig = struct.unpack("<IIII", body[off:off + 16])
        recs.append((sec, frac, incl, orig, body[off + 16:off + 16 + incl]))
        off += 16 + incl
    span = recs[-1][0] - recs[0][0] + 5
    with open(dst, "wb") as f:
        f.write(hdr)
        for c in range(copies):
            for sec, frac, incl, orig, pkt in recs:
                pkt = bytearray(pkt)
                # IPv4 over Ethernet: change the source address's last byte per copy (new flows).
                if len(pkt) > 34 and pkt[12:14] == b"\x08\x00":
                    pkt[29] = (pkt[29] + c) & 0xff
                    pkt[28] = (pkt[28] + c // 256) & 0xff
                f.write(struct.pack("<IIII", sec + c * span, frac, incl, orig))
                f.write(pkt)


if __name__ == "__main__":
    sys.exit(main())
