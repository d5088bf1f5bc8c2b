"""Per convolution shape: nodegrad's oneDNN execution time (ONEDNN_VERBOSE lines of bench/profile.ts)
against ONNX Runtime's kernel time (its profiler), each the median per call times the convolutions of
that shape in one inference step. Usage: analyze.py DIR NAME (run by run.sh)."""
import collections
import glob
import json
import re
import statistics
import sys

folder, name = sys.argv[1], sys.argv[2]
# ORT: per (key, node) the list of durations over runs
ort = collections.defaultdict(list)
for f in sorted(glob.glob(f'{folder}/ort_{name}_*.json')):
    for e in json.load(open(f)):
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time') and e['args'].get('op_name') == 'Conv':
            i = e['args']['input_type_shape']; o = e['args']['output_type_shape']
            x = i[0]['float']; w = i[1]['float']; y = o[0]['float']
            key = (w[1], w[0], x[2], w[2], x[2] // y[2])
            ort[(key, e['name'])].append(e['dur'] / 1000)
ortk = collections.defaultdict(float); cnt = collections.Counter()
for (key, node), d in ort.items(): ortk[key] += statistics.median(d); cnt[key] += 1
# nodegrad: oneDNN verbose exec lines, in call order per step
ng = collections.defaultdict(list)
pat = re.compile(r'mb\d+_ic(\d+)oc(\d+)_ih(\d+)oh(\d+)kh(\d+)sh(\d+)')
other = collections.defaultdict(list)
for f in sorted(glob.glob(f'{folder}/ng_{name}_*.txt')):
    for line in open(f):
        if not line.startswith('onednn_verbose,exec'): continue
        parts = line.strip().split(',')
        t = float(parts[-1]); prim = parts[3]
        m = pat.search(line)
        if prim == 'convolution' and m:
            ic, oc, ih, oh, kh, sh = map(int, m.groups())
            key = (ic, oc, ih, kh, sh)
            ng[key].append(t)
        else:
            other[prim + ' ' + parts[4]].append(t)
rows = []
for key in sorted(set(ortk) | set(ng), key=lambda k: (k[2] * -1, k)):
    calls = cnt[key]
    n = ng.get(key, [])
    # each step calls this shape `calls` times: median per call times calls
    ngm = statistics.median(n) * calls if n else float('nan')
    rows.append((key, calls, ngm, ortk.get(key, float('nan'))))
tn = sum(r[2] for r in rows); to = sum(r[3] for r in rows)
print(f'| conv (in→out ch, input size, kernel, stride) | convs | nodegrad ms | ORT ms | nodegrad / ORT |')
print('|---|---:|---:|---:|---:|')
for (ic, oc, ih, kh, s), calls, a, b in rows:
    print(f'| {ic}→{oc}, {ih}², {kh}x{kh}, s{s} | {calls} | {a:.1f} | {b:.1f} | {a/b:.2f} |')
print(f'| all convolutions | {sum(r[1] for r in rows)} | {tn:.1f} | {to:.1f} | {tn/to:.2f} |')
# One stem convolution per step (warm-up steps included, as in the other lines).
steps = sum(1 for f in glob.glob(f'{folder}/ng_{name}_*.txt') for line in open(f) if line.startswith('onednn_verbose,exec') and '_ic3oc64_' in line)
for k, v in sorted(other.items(), key=lambda kv: -sum(kv[1])):
    print(f'other oneDNN primitives: {k}: {sum(v) / max(steps, 1):.1f} ms per step')
