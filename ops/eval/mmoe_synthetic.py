#!/usr/bin/env python3
"""MMoE's synthetic experiment (docs/models.md §1, docs/evaluation.md §2).

Runs `freshet eval --data synthetic --mode prequential` for shared-bottom, OMoE,
MMoE and PLE at task correlations 0.5, 0.9 and 1.0 over SEEDS seeds each, then
writes the seed-mean loss-vs-steps plot (one panel per correlation, like the
paper's Fig. 4) and a table of final losses (mean ± std over seeds).

  python3 ops/eval/mmoe_synthetic.py [--seeds 20] [--rows 60000] [--out build/eval/synthetic]
"""
import argparse
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png_plot import plot_panels  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = [  # (label, --family, config)
    ('SHARED-BOTTOM', 'shared_bottom', 'configs/eval/synthetic_shared_bottom.pbtxt'),
    ('OMOE', 'omoe', 'configs/eval/synthetic_moe.pbtxt'),
    ('MMOE', 'mmoe', 'configs/eval/synthetic_moe.pbtxt'),
    ('PLE', 'ple', 'configs/eval/synthetic_ple.pbtxt'),
]
CORRELATIONS = [0.5, 0.9, 1.0]


def final_loss(run, tail):
    """Mean of both tasks' loss over the last `tail` curve points of one run."""
    pts = run['curve'][-tail:]
    vals = [l for p in pts for l in p[1:] if l >= 0]
    return sum(vals) / len(vals)


def mean_std(xs):
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, default=20)
    ap.add_argument('--rows', type=int, default=60000)
    ap.add_argument('--out', default=os.path.join(ROOT, 'build', 'eval', 'synthetic'))
    ap.add_argument('--binary', default=os.path.join(ROOT, 'build', 'freshet'))
    ap.add_argument('--reuse', action='store_true', help='re-read existing JSON files instead of running')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    panels, rows, per_seed = [], [], {}
    for p in CORRELATIONS:
        lines = []
        for label, family, config in MODELS:
            out = os.path.join(a.out, 'p%s_%s.json' % (p, family))
            cmd = [a.binary, 'eval', '--data', 'synthetic', '--mode', 'prequential', '--correlation', str(p),
                   '--rows', str(a.rows), '--test-rows', '0', '--seeds', str(a.seeds), '--family', family,
                   '--model-config', os.path.join(ROOT, config), '--json', out]
            if not (a.reuse and os.path.exists(out)):
                print(' '.join(cmd), file=sys.stderr)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(out) as f:
                v = json.load(f)['variants'][0]
            curve = v['mean_curve']
            lines.append((label, [c[0] for c in curve], [c[1] for c in curve]))
            finals = [final_loss(r, max(1, len(r['curve']) // 10)) for r in v['runs']]
            m, s = mean_std(finals)
            rows.append((p, label, m, s, min(finals), max(finals), len(finals)))
            per_seed[(p, label)] = dict(zip([r['seed'] for r in v['runs']], finals))
        panels.append(('P=%s' % p, lines))
    png = os.path.join(a.out, 'mmoe_synthetic_loss.png')
    plot_panels(png, panels, ylabel='MSE (MEAN OF 2 TASKS, SEED MEAN)', skip_fraction=0.15)
    print('| correlation | model | final loss mean ± std | min | max | seeds |')
    print('|---|---|---|---|---|---|')
    for p, label, m, s, lo, hi, n in rows:
        print('| %s | %s | %.4f ± %.4f | %.4f | %.4f | %d |' % (p, label.lower(), m, s, lo, hi, n))
    print('\nDegradation from p=1.0 to p=0.5 (final loss difference of the means):')
    by = {(p, label): m for p, label, m, *_ in rows}
    for label, _, _ in MODELS:
        print('  %-14s %+.4f' % (label.lower(), by[(0.5, label)] - by[(1.0, label)]))
    # Seed s draws the same u1, u2, alpha, beta and x at every p (only w2 moves), so
    # the degradation can be paired per seed: mean and standard error over seeds.
    print('\nPaired per seed, final loss(p) - final loss(p=1.0): mean ± standard error')
    for label, _, _ in MODELS:
        cells = []
        for p in (0.5, 0.9):
            d = [per_seed[(p, label)][k] - per_seed[(1.0, label)][k] for k in per_seed[(1.0, label)]]
            m, s = mean_std(d)
            cells.append('p=%s: %+.4f ± %.4f' % (p, m, s / math.sqrt(len(d))))
        print('  %-14s %s' % (label.lower(), '   '.join(cells)))
    print('plot: %s' % png)


if __name__ == '__main__':
    main()
