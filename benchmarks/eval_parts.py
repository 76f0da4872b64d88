"""Measure the parts analysis against renders of ../shared/eval/render.py + render_parts.py.

    python benchmarks/eval_parts.py RENDER_DIR [RENDER_DIR ...]

One JSON line per session: the session reference, track tunings, the share of injected out-of-tune
notes covered and of flagged time on them, the guitar's late bars covered and their median ms, and
any other out-of-time finding. Reads only truth.json and the session.
"""

import json
import sys
from pathlib import Path

from sessionfix.pipeline import scan

for d in sys.argv[1:]:
    t = json.loads(Path(d, "truth.json").read_text())
    r = scan(d + "/session")
    P = t["parts"]
    fs = [f for f in r.findings if f.kind in ("track_tuning", "out_of_tune", "out_of_time")]
    tt = {f.track: (f.value, f.severity) for f in fs if f.kind == "track_tuning"}
    # out_of_tune coverage: injected defect notes (|cents - global| >= 20) covered by a flagged passage
    cov_n = tot_n = 0
    flagged_t = flagged_on = 0.0
    for name in ("Bass DI", "Lead Vox"):
        defects = [x for x in P[name]["defects"] if abs(x["cents"] - P[name]["global_cents"]) >= 20]
        spans = [(f.start_s, f.end_s) for f in fs if f.kind == "out_of_tune" and f.track == name + ".wav"]
        for x in defects:
            tot_n += 1
            mid = (x["start_s"] + x["end_s"]) / 2
            cov_n += any(a - 0.05 <= mid <= b + 0.05 for a, b in spans)
        for a, b in spans:
            flagged_t += b - a
            flagged_on += sum(max(0, min(b, x["end_s"]) - max(a, x["start_s"])) for x in defects)
    bar_s = P["Gtr Clean"]["bar_s"]
    late = (bar_s[8], bar_s[12])
    gt = [f for f in fs if f.kind == "out_of_time" and f.track == "Gtr Clean.wav"]
    cover = sum(max(0, min(f.end_s, late[1]) - max(f.start_s, late[0])) for f in gt) / (late[1] - late[0])
    print(
        json.dumps(
            {
                "session": d.rstrip("/").split("/")[-1],
                "A4": r.parts.reference_a4_hz,
                "track_tuning": tt,
                "out_of_tune_notes_covered": f"{cov_n}/{tot_n}",
                "flagged_time_on_defects": round(flagged_on / flagged_t, 3) if flagged_t else None,
                "gtr_late_coverage": round(cover, 3),
                "gtr_late_ms": [f.value for f in gt],
                "out_of_time_other": [
                    (f.track, f.value, f.message.split(" in ")[-1])
                    for f in fs
                    if f.kind == "out_of_time" and f.track != "Gtr Clean.wav"
                ],
            }
        )
    )
