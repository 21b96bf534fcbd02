#!/usr/bin/env python3
"""bench/capacity/perfsum.py — where the server's time goes, from `perf script` output of a
`perf record --call-graph dwarf` of ror (bench/capacity.sh PROFILE=1 writes one).

    perf script -i perf.data | perfsum.py [FUNCTION...]

Prints the share of samples per thread (comm), then for each FUNCTION (default: the write path
of a capacity update) its inclusive share and the split over its direct callees, so the cost of
one stage (validation, index rows, capacity hook, commit...) reads off directly. Inlined frames
count as frames. Percentages are of all samples of the process.
"""
import collections
import re
import sys

DEFAULT = ['writer_main', 'batch_run', 'txn_update', 'store_txn_put', 'index_write',
           'capacity_version_hook', 'conn_exec', 'updater', 'stream_read', 'cap_pull', 'wanted',
           'place_lookup', 'store_capacity_events', 'MHD_run_from_select', 'MHD_resume_connection']


def samples(stream):
    comm, frames = None, []
    for line in stream:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
            continue
        if not line[0].isspace():  # header: "comm  tid  time: period event:"
            comm = line.split()[0]
            continue
        parts = line.split(None, 1)
        sym = parts[1] if len(parts) > 1 else '?'
        sym = sym.split(' (')[0].rsplit('+0x', 1)[0]
        sym = re.sub(r'(\.(part|isra|constprop|cold|lto_priv)(\.\d+)?)+$', '', sym)
        frames.append(sym)  # leaf first
    if comm is not None:
        yield comm, frames


def main():
    wanted = sys.argv[1:] or DEFAULT
    all_samples = list(samples(sys.stdin))
    n = len(all_samples)
    if not n:
        sys.exit('perfsum: no samples')
    by_comm = collections.Counter(c for c, _ in all_samples)
    print(f'samples: {n}')
    for c, k in by_comm.most_common():
        print(f'  {100 * k / n:5.1f}%  thread {c}')
    for fn in wanted:
        callees = collections.Counter()
        total = 0
        for _, frames in all_samples:
            if fn not in frames:
                continue
            total += 1
            i = frames.index(fn)
            callees[frames[i - 1] if i > 0 else '(self)'] += 1
        if not total:
            continue
        print(f'\n{fn}: {100 * total / n:.1f}% inclusive')
        for k, v in callees.most_common(12):
            if 100 * v / n >= 0.5:
                print(f'  {100 * v / n:5.1f}%  {k}')


if __name__ == '__main__':
    main()
