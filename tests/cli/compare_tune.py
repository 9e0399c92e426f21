#!/usr/bin/env python3
"""compare_tune.py REF.json C.json - the numpy leave-one-out reference
(tests/reference/pefa_loo.py) and pefa-tune --json agree: same query and
group counts, every setting's mean metric within 1e-6, bootstrap bound within
1e-5, the same choice."""
import json
import sys

r, c = (json.load(open(p)) for p in sys.argv[1:3])
bad = []
for key in ("queries", "distinct", "chosen", "metric"):
    if r[key] != c[key]:
        bad.append("%s: reference %s, pefa-tune %s" % (key, r[key], c[key]))
worst = 0.0
for a, b in zip(r["grid"], c["grid"]):
    d = abs(a["score"] - b["score"])
    worst = max(worst, d)
    if (a["mode"], round(a["lambda"], 1), a["knn"]) != (b["mode"], round(b["lambda"], 1), b["knn"]):
        bad.append("grid order differs at %s / %s" % (a, b))
    elif d > 1e-6 or abs(a["delta_lo"] - b["delta_lo"]) > 1e-5:
        bad.append("%s lambda %.1f k %d: reference %.7f (5%% %.7f), pefa-tune %.7f (5%% %.7f)"
                   % (a["mode"], a["lambda"], a["knn"], a["score"], a["delta_lo"], b["score"], b["delta_lo"]))
print("%d settings, largest mean difference %.2e, chosen %d (reference) / %d (pefa-tune)"
      % (len(r["grid"]), worst, r["chosen"], c["chosen"]))
for b in bad:
    print("MISMATCH:", b)
sys.exit(1 if bad else 0)
