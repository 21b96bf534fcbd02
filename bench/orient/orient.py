#!/usr/bin/env python3
"""Helpers of bench/orient.sh (Python 3 standard library only).

  orient.py load ARCHIVE... --system S --out DIR --points N --seed N --jitter-km K
      Reads the FHIR NDJSON members of the archives; writes DIR/etab.tsv (COPY text format:
      id, category, name, EWKT point; one row per establishment and category code of system S),
      DIR/points.tsv (idx, lat, lon: the query points) and DIR/points.lua; prints counts as JSON.
  orient.py pglog LOGFILE [SKIP]
      Server time of each statement from a PostgreSQL log written with
      log_min_duration_statement=0 and log_line_prefix='%p|': bind + execute of the same backend,
      leaving out the first SKIP (default 10) statements of each backend (library load, custom
      plans before the generic one: the warm-up of a new connection). Prints "count p50 p99" (ms).
  orient.py pgbenchlog FILE...
      Client latency of each transaction from pgbench -l logs. Prints "count p50 p99" (ms).
  orient.py compare PG_TSV ROR_DIR N
      Compares the PostGIS answers (PG_TSV: idx, id, distance in m; idx, "#total", count) with
      the ror ones (ROR_DIR/ror-<idx>.json) for points 1..N. Prints a JSON summary.
"""
import json
import math
import os
import random
import re
import sys
import tarfile

EARTH_KM = 6371.0088  # mean radius; only used to jitter the query points
TIE_KM = 1.5e-3      # km: distances closer than this count as equal (ror rounds to 1 m)


def iter_resources(paths):
    for path in paths:
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                with tar.extractfile(member) as f:
                    for line in f:
                        line = line.strip()
                        if line:
                            yield json.loads(line)


def tsv_escape(s):
    return (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def jitter(rng, lat, lon, max_km):
    """A point at a uniform bearing and a distance uniform in [0, max_km] from (lat, lon)."""
    d = rng.uniform(0.0, max_km) / EARTH_KM
    brg = rng.uniform(0.0, 2.0 * math.pi)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(brg))
    l2 = l1 + math.atan2(math.sin(brg) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def cmd_load(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="orient.py load")
    ap.add_argument("archives", nargs="+")
    ap.add_argument("--system", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20210108)
    ap.add_argument("--jitter-km", type=float, default=5.0)
    a = ap.parse_args(argv)

    orgs = {}   # id -> (name, [category codes])
    locs = {}   # organization id -> (lat, lon)
    counts = {"Organization": 0, "Location": 0, "other": 0}
    for r in iter_resources(a.archives):
        rt = r.get("resourceType")
        if rt == "Organization":
            counts[rt] += 1
            codes = [c.get("code") for t in r.get("type", []) for c in t.get("coding", [])
                     if c.get("system") == a.system and c.get("code")]
            orgs[r["id"]] = (r.get("name") or "", codes)
        elif rt == "Location":
            counts[rt] += 1
            ref = (r.get("managingOrganization") or {}).get("reference", "")
            pos = r.get("position") or {}
            if ref.startswith("Organization/") and "latitude" in pos and "longitude" in pos:
                locs[ref[len("Organization/"):]] = (float(pos["latitude"]),
                                                    float(pos["longitude"]))
        else:
            counts["other"] += 1

    os.makedirs(a.out, exist_ok=True)
    rows = 0
    placed = 0
    with open(os.path.join(a.out, "etab.tsv"), "w", encoding="utf-8") as f:
        for oid in sorted(orgs):
            if oid not in locs:
                continue
            placed += 1
            name, codes = orgs[oid]
            lat, lon = locs[oid]
            # repr() is the shortest exact form of the double: PostGIS parses the same value
            # as ror's JSON reader does.
            for code in sorted(set(codes)):
                f.write(f"{tsv_escape(oid)}\t{tsv_escape(code)}\t{tsv_escape(name)}\t"
                        f"SRID=4326;POINT({lon!r} {lat!r})\n")
                rows += 1

    # Query points: positions of establishments drawn with a fixed seed (so dense areas are
    # queried as often as they hold establishments), each moved by up to jitter-km.
    rng = random.Random(a.seed)
    placed_ids = sorted(locs)
    points = []
    for _ in range(a.points):
        lat, lon = locs[placed_ids[rng.randrange(len(placed_ids))]]
        plat, plon = jitter(rng, lat, lon, a.jitter_km)
        points.append((f"{plat:.6f}", f"{plon:.6f}"))
    with open(os.path.join(a.out, "points.tsv"), "w") as f:
        for i, (lat, lon) in enumerate(points, 1):
            f.write(f"{i}\t{lat}\t{lon}\n")
    with open(os.path.join(a.out, "points.lua"), "w") as f:
        f.write("return {\n")
        for lat, lon in points:
            f.write(f'{{"{lat}","{lon}"}},\n')
        f.write("}\n")
    print(json.dumps({"organizations": counts["Organization"], "locations": counts["Location"],
                      "other": counts["other"], "placed": placed, "rows": rows,
                      "points": len(points)}))


def percentile(sorted_vals, p):
    """Nearest-rank percentile (the same rule as the wrk script)."""
    if not sorted_vals:
        return float("nan")
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


def cmd_pglog(argv):
    skip = int(argv[1]) if len(argv) > 1 else 10
    seen = {}
    line_re = re.compile(r"^(\d+)\|.*?duration: ([0-9.]+) ms\s+(bind|execute|statement)\b")
    pending = {}
    vals = []
    with open(argv[0], encoding="utf-8", errors="replace") as f:
        for line in f:
            m = line_re.match(line)
            if not m:
                continue
            pid, ms, kind = m.group(1), float(m.group(2)), m.group(3)
            if kind == "bind":
                pending[pid] = ms
                continue
            ms += pending.pop(pid, 0.0)
            seen[pid] = seen.get(pid, 0) + 1
            if seen[pid] > skip:
                vals.append(ms)
    print_pct(vals)


def print_pct(vals):
    vals.sort()
    print(f"{len(vals)} {percentile(vals, 50):.3f} {percentile(vals, 99):.3f}")


def cmd_pgbenchlog(argv):
    # PostgreSQL 15: client_id transaction_no time(us) script_no time_epoch time_us [...]
    vals = []
    for path in argv:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    vals.append(int(parts[2]) / 1000.0)
    print_pct(vals)


def tie_equal(ror, pg, cut):
    """Equal up to the order of equally distant establishments (same distances position by
    position, same ids within each run of equal distances); when the limit cut the list (cut),
    the last run may hold different ones of the equally distant establishments."""
    if len(ror) != len(pg):
        return False
    if any(abs(a[1] - b[1]) >= TIE_KM for a, b in zip(ror, pg)):
        return False
    k = 0
    while k < len(ror):
        j = k + 1
        while j < len(ror) and ror[j][1] - ror[j - 1][1] < TIE_KM:
            j += 1
        if {r for r, _ in ror[k:j]} != {p for p, _ in pg[k:j]} and not (cut and j == len(ror)):
            return False
        k = j
    return True


def cmd_compare(argv):
    pg_path, ror_dir, n = argv[0], argv[1], int(argv[2])
    pg_rows, pg_totals = {}, {}
    with open(pg_path, encoding="utf-8") as f:
        for line in f:
            idx, rid, val = line.rstrip("\n").split("\t")
            if rid == "#total":
                pg_totals[int(idx)] = int(val)
            else:
                pg_rows.setdefault(int(idx), []).append((rid, float(val) / 1000.0))
    same = tie_only = differ = 0
    max_dkm = 0.0
    notes = []
    total_diff = 0
    for i in range(1, n + 1):
        with open(os.path.join(ror_dir, f"ror-{i}.json"), encoding="utf-8") as f:
            doc = json.load(f)
        ror = [(r["reference"].split("/")[-1], float(r["distance_km"])) for r in doc["results"]]
        pg = pg_rows.get(i, [])
        pg_total = pg_totals.get(i)
        if pg_total is not None and doc.get("total") != pg_total:
            total_diff += 1
            if len(notes) < 5:
                notes.append(f"point {i}: total ror {doc.get('total')} vs PostGIS {pg_total}")
        pgd = dict(pg)
        for rid, dkm in ror:
            if rid in pgd:
                max_dkm = max(max_dkm, abs(dkm - pgd[rid]))
        if [r for r, _ in ror] == [p for p, _ in pg]:
            same += 1
            continue
        if tie_equal(ror, pg, pg_total is not None and pg_total > len(pg)):
            tie_only += 1
            continue
        differ += 1
        if len(notes) < 5:
            only_r = [r for r, _ in ror if r not in pgd][:3]
            only_p = [p for p, _ in pg if p not in dict(ror)][:3]
            notes.append(f"point {i}: {len(ror)} vs {len(pg)} results; only ror {only_r}, "
                         f"only PostGIS {only_p}")
    print(json.dumps({"points": n, "same": same, "tie_order_only": tie_only, "differ": differ,
                      "total_differs": total_diff, "max_distance_diff_km": round(max_dkm, 6),
                      "notes": notes}, ensure_ascii=False))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "load":
        cmd_load(rest)
    elif cmd == "pglog":
        cmd_pglog(rest)
    elif cmd == "pgbenchlog":
        cmd_pgbenchlog(rest)
    elif cmd == "compare":
        cmd_compare(rest)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
