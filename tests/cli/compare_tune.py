#!/usr/bin/env python3
"""compare_tune.py REF.json C.json - the numpy leave-one-out reference
(tests/reference/pefa_loo.py) and pefa-tune --json agree: same query and
group counts, every setting's mean metric within 1e-6, bootstrap bound within
1e-5, the same choice; and the label check: the same on/off, pass/fail and
choice of the grid alone, own and other recall and their bound within 1e-5."""
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
lr, lc = r["label_check"], c["label_check"]
for key in ("enabled", "passed"):
    if lr[key] != lc[key]:
        bad.append("label check %s: reference %s, pefa-tune %s" % (key, lr[key], lc[key]))
if r["chosen_margin"] != c["chosen_margin"]:
    bad.append("chosen by the grid alone: reference %s, pefa-tune %s" % (r["chosen_margin"], c["chosen_margin"]))
for key in ("own", "other", "delta_lo"):
    if abs(lr[key] - lc[key]) > 1e-5:
        bad.append("label check %s: reference %.7f, pefa-tune %.7f" % (key, lr[key], lc[key]))
print("%d settings, largest mean difference %.2e, chosen %d (reference) / %d (pefa-tune)"
      % (len(r["grid"]), worst, r["chosen"], c["chosen"]))
print("label check: %s / %s, own %.6f / %.6f, other %.6f / %.6f, 5%% %+.6f / %+.6f (reference / pefa-tune)"
      % ("passed" if lr["passed"] else "failed", "passed" if lc["passed"] else "failed", lr["own"], lc["own"],
         lr["other"], lc["other"], lr["delta_lo"], lc["delta_lo"]))
for b in bad:
    print("MISMATCH:", b)
sys.exit(1 if bad else 0)
