"""Measure kit analysis against sessions rendered by ../shared/eval/render.py (their truth.json).

    python benchmarks/eval_kit.py RENDER_DIR [RENDER_DIR ...]   # each holds session/ and truth.json

Prints one line per session with the figures the kit-analysis issue asks for. The renderer is not
part of this project; this script only reads what it wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from sessionfix.pipeline import scan


def evaluate(render: Path) -> dict[str, object]:
    truth = json.loads((render / "truth.json").read_text())
    result = scan(render / "session")
    sr = truth["sr"]
    partial = sorted(f.track for f in result.findings if f.kind == "partial_quantisation")
    delays = {f.track: f.value for f in result.findings if f.kind == "mic_delay"}
    row: dict[str, object] = {
        "session": render.name,
        "kit": truth["kit"],
        "scenario": truth["scenario"],
        "tempo_error_bpm": round(abs(result.kit.tempo.bpm - truth["bpm"]), 3) if result.kit.tempo else None,
        "partial_quantisation": partial,
        "mic_delay_ms": delays,
    }
    if truth["moved"]:
        pair = next(p for p in result.kit.pairs if p.close == "Snare Top.wav" and p.reference == "OH L.wav")
        delay_ms = truth["direct_delay_ms"]["Snare Top"]["snare"]
        errors, found, moved = [], 0, [m for m in truth["moved"] if m["instr"] == "snare"]
        for m in moved:
            pos = (m["grid_s"] + delay_ms / 1e3) * sr
            j = int(np.argmin(np.abs(pair.positions - pos)))
            if abs(pair.positions[j] - pos) < 0.005 * sr and pair.measured[j]:
                found += 1
                errors.append(pair.moves_ms[j] - m["move_ms"])
        e = np.abs(np.array(errors))
        rel = np.abs(np.array(errors) - np.median(errors))
        natural_true = truth["direct_delay_ms"]["OH L"]["snare"] - delay_ms
        row.update(
            {
                "moved_snare_found": f"{found}/{len(moved)}",
                "move_err_median_ms": round(float(np.median(e)), 3),
                "move_err_p95_ms": round(float(np.percentile(e, 95)), 3),
                "move_err_after_common_offset_median_ms": round(float(np.median(rel)), 4),
                "move_err_after_common_offset_p95_ms": round(float(np.percentile(rel, 95)), 4),
                "natural_lag_ms": round(pair.natural_lag_ms or float("nan"), 3),
                "natural_lag_true_ms": round(natural_true, 3),
                "natural_lag_basis": pair.natural_lag_basis,
            }
        )
    return row


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps(evaluate(Path(arg))))
