"""Where the kit analysis places each pair's direct sound, against the renders' truth (untouched renders).

    python benchmarks/eval_natural_lags.py RENDER_DIR [RENDER_DIR ...] > lags.jsonl
    python benchmarks/eval_natural_lags.py --summary lags.jsonl [other.jsonl]

Per render, one JSON line: every close mic -> reference pair's reported natural_lag_ms and its truth
(render_real.py: the median onset lag of the clean kit samples the session uses, truth.json
natural_lags; render.py: the image-source direct delays, reference less close mic). The summary groups
the pairs by source (real, sim), close mic (kick, snare top, snare bottom, toms) and reference (overhead,
room): median and p90 |error| (ms), the signed median, and the pairs whose direct sound was not placed;
given two files, side by side (before || after a change). Reads only truth.json and the session.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

SIM_SOURCE = {"Kick In": "kick", "Snare Top": "snare", "Snare Bottom": "snare", "Tom 1": "tom1", "Tom 2": "tom2"}


def measure(render: Path) -> dict[str, object]:
    from sessionfix.pipeline import scan

    truth = json.loads((render / "truth.json").read_text())
    result = scan(render / "session", parts=False)
    rows = []
    for p in result.kit.pairs:
        close, ref = p.close.removesuffix(".wav"), p.reference.removesuffix(".wav")
        if truth.get("generator") == "render_real.py":
            s = truth["natural_lags"]["summary"].get(f"{close}->{ref}")
            exact = s["session"]["onset_ms"]["median_ms"] if s and s["session"]["onset_ms"]["n"] else None
        else:
            src, delays = SIM_SOURCE.get(close), truth.get("direct_delay_ms", {})
            known = src and ref in delays and close in delays and src in delays[ref]
            exact = delays[ref][src] - delays[close][src] if known else None
        rows.append([close, ref, p.natural_lag_ms, exact])
    return {"render": render.name, "source": truth.get("generator", truth.get("kit")), "pairs": rows}


def _groups(path: str) -> tuple[dict[tuple[str, str, str], list[float]], dict[tuple[str, str, str], int]]:
    errors: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    unplaced: dict[tuple[str, str, str], int] = defaultdict(int)
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        source = "real" if r["source"] == "render_real.py" else "sim"
        for close, ref, got, exact in r["pairs"]:
            if exact is None:
                continue
            mic = "kick" if "Kick" in close else "snare top" if close == "Snare Top" else (
                "snare bottom" if "Bottom" in close else "tom" if "Tom" in close else close
            )
            key = (source, mic, "overhead" if ref.startswith("OH") else "room")
            if got is None:
                unplaced[key] += 1
            else:
                errors[key].append(got - exact)
    return errors, unplaced


def summary(paths: list[str]) -> None:
    runs = [_groups(p) for p in paths]
    keys = sorted(set().union(*(set(e) | set(u) for e, u in runs)))
    for key in keys:
        cells = []
        for errors, unplaced in runs:
            e = np.array(errors.get(key, []))
            size = np.abs(e)
            figures = (
                f"median |e| {np.median(size):.3f} p90 {np.percentile(size, 90):.3f} signed {np.median(e):+.3f}"
                if len(e)
                else "no placed pair"
            )
            cells.append(f"n {len(e):3d} unplaced {unplaced.get(key, 0):3d} {figures}")
        print(f"{'/'.join(key):24s} " + "  ||  ".join(cells))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        summary(sys.argv[2:])
    else:
        for arg in sys.argv[1:]:
            print(json.dumps(measure(Path(arg))), flush=True)
