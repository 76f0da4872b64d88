"""Measure the kit analysis and `align` against rendered sessions with ground truth.

    python benchmarks/eval_real.py [--align] [--coherence ../shared/eval/coherence.py] RENDER_DIR...

Each RENDER_DIR holds session/ and truth.json, written by ../shared/eval/render_real.py (real multi-mic
recordings) or ../shared/eval/render.py (a simulated room); both truth formats are read. Renders are
named SCENARIO-SEED (natural-1, cut-1, excl-1, ...): the unedited twin of X-N is natural-N beside it.

Per render it prints one JSON line: the kit findings (partial_quantisation, mic_delay, polarity), the
lowest natural lag of any pair, and for Snare Top -> OH L every moved hit's move against the truth
(absolute where the edit left hits in place, relative to each other where it moved every hit) and the
share of moved hits reported (the report lists the hit with a move), beside the share also placed within
1.5 ms and the listed positions' error. With --align it realigns the session both ways and measures the result
with the independent meter (coherence.py, --plain for real recordings) beside the twin's figures.
The renderers are not part of this project; this script only reads what they wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from sessionfix.cli import main as cli
from sessionfix.pipeline import scan

MATCH_S = 0.010  # a truth hit is the nearest listed hit this close (and nearer than half its neighbours)
PLACED_S = 0.0015  # a matched hit placed this close to the truth (after the median offset) is placed well
OFFSET_S = 0.015  # the median offset is taken over nearest hits this close: a sample's attack can build for ms


def _truth_hits(truth: dict, close: str, instr: str) -> tuple[np.ndarray, np.ndarray]:
    """Close-mic attack times (s, as edited) and moves (ms, > 0 later) of every `instr` hit."""
    sr = truth["sr"]
    if "place_sample" in truth["hits"][0]:  # render_real.py
        hits = [h for h in truth["hits"] if h["instr"] == instr]
        moves = np.array([h.get("track_moves", {}).get(close, 0) for h in hits], float)
        times = np.array([h["place_sample"] + h["close_onset_in_file_ms"].get(close, 0.0) * sr / 1e3 for h in hits])
        return (times + moves) / sr, moves / sr * 1e3
    moved = {round(m["natural_s"], 6): m["move_ms"] for m in truth["moved"] if m["instr"] == instr}
    edited = close in truth.get("quantised_tracks", [])
    delay = truth["direct_delay_ms"][close][instr] / 1e3
    hits = [h for h in truth["hits"] if h["instr"] == instr]
    moves = np.array([moved.get(round(h["natural_s"], 6), 0.0) if edited else 0.0 for h in hits])
    times = np.array([h["natural_s"] + delay for h in hits]) + moves / 1e3
    return times, moves


def _match(reported_s: np.ndarray, truth_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the listed hit matching each truth hit (-1 where none does), and its position error (s,
    after the median offset between listed and truth positions; NaN where unmatched).

    A hit is identified, not judged, by its position: the nearest listed hit within MATCH_S and within half
    the gap to the truth hit's neighbours, each listed hit matched once. Where a soft sample's attack starts
    under another drum's bleed the listed position can sit a few ms from the truth's (the sample file's
    first 2 % of its peak) while its move is exact; the position error is reported on its own."""
    none = np.full(len(truth_s), -1)
    if not len(reported_s) or not len(truth_s):
        return none, np.full(len(truth_s), np.nan)
    nearest = np.abs(reported_s[None, :] - truth_s[:, None]).argmin(axis=1)
    close = np.abs(reported_s[nearest] - truth_s) < OFFSET_S
    offset = float(np.median((reported_s[nearest] - truth_s)[close])) if close.any() else 0.0
    err = reported_s[nearest] - offset - truth_s
    order = np.argsort(truth_s)
    gaps = np.diff(truth_s[order])
    half_gap = np.empty(len(truth_s))
    half_gap[order] = 0.5 * np.minimum(np.append(gaps, np.inf), np.insert(gaps, 0, np.inf))
    ok = np.abs(err) < np.minimum(MATCH_S, half_gap)
    idx = np.where(ok, nearest, -1)
    # one truth hit per listed hit: the nearer keeps it
    for j in np.unique(idx[idx >= 0]):
        claim = np.flatnonzero(idx == j)
        if len(claim) > 1:
            idx[claim[claim != claim[np.argmin(np.abs(err[claim]))]]] = -1
    return idx, np.where(idx >= 0, err, np.nan)


def move_errors(result, truth: dict, close: str = "Snare Top", reference: str = "OH L") -> dict[str, object]:
    """Per moved hit, the reported move against the truth: absolute where the edit left hits in place
    (partial_exclude), relative to each other where it moved every hit (partial_cut)."""
    sr = result.session.sr
    pair = next((p for p in result.kit.pairs if p.close == close + ".wav" and p.reference == reference + ".wav"), None)
    if pair is None:
        return {"pair": "missing"}
    instr = pair.instrument
    truth_s, truth_ms = _truth_hits(truth, close, instr)
    listed = ~pair.repeated  # the hits the report lists: a stroke heard twice (an edit's flam) is one hit
    idx, position_err = _match(pair.positions[listed] / sr, truth_s)
    moved = np.abs(truth_ms) > 0
    found = idx >= 0
    reported = np.where(found, pair.moves_ms[listed][np.maximum(idx, 0)], np.nan)
    err = reported - truth_ms
    ok = ~np.isnan(err)
    every_hit_moved = truth["scenario"] == "partial_cut"
    if every_hit_moved and ok.any():
        err = err - np.median(err[ok])  # only relative moves are knowable
    flagged = found & ~np.isnan(reported) & (np.abs(np.nan_to_num(reported)) > 0.05)
    e = np.abs(err[ok & moved])
    placed = np.abs(position_err[found]) * 1e3
    return {
        "pair": f"{close}->{reference}",
        "moves": "relative" if every_hit_moved else "absolute",
        "moved_hits": int(moved.sum()),
        "moved_reported": round(float(np.mean(flagged[moved])), 3) if moved.any() else None,
        "move_err_median_ms": round(float(np.median(e)), 3) if len(e) else None,
        "move_err_p95_ms": round(float(np.percentile(e, 95)), 3) if len(e) else None,
        "moved_reported_placed": (
            round(float(np.mean(flagged[moved] & (np.abs(np.nan_to_num(position_err[moved], nan=1.0)) < PLACED_S))), 3)
            if moved.any()
            else None
        ),  # the old, stricter count: reported and placed within PLACED_S
        "position_err_median_ms": round(float(np.median(placed)), 3) if len(placed) else None,
        "position_err_p95_ms": round(float(np.percentile(placed, 95)), 3) if len(placed) else None,
        "unmoved_found": int(np.sum(found & ~moved)),
        "unmoved_reported_moved": int(np.sum(flagged & ~moved & (np.abs(np.nan_to_num(err)) > 0.3))),
    }


def coherence(session: Path, truth: Path, meter: Path, plain: bool) -> dict:
    args = [sys.executable, str(meter), str(session), str(truth)] + (["--plain"] if plain else [])
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def evaluate(render: Path, *, align: bool, meter: Path | None) -> dict[str, object]:
    truth = json.loads((render / "truth.json").read_text())
    real = "place_sample" in truth["hits"][0]
    result = scan(render / "session")
    kinds = ("partial_quantisation", "mic_delay", "polarity")
    row: dict[str, object] = {
        "render": render.name,
        "source": "real" if real else f"sim:{truth['kit']}",
        "bpm": truth["bpm"],
        "scenario": truth["scenario"],
        "findings": {
            k: sorted(
                f"{f.track}" + (f"={f.value}" if f.kind == "mic_delay" else "") for f in result.findings if f.kind == k
            )
            for k in kinds
        },
        "moved_hits_counted": result.kit.moved_hits,
        "min_natural_lag_ms": round(
            min((p.natural_lag_ms for p in result.kit.pairs if p.natural_lag_ms is not None), default=float("nan")), 3
        ),
        "tempo_bpm": round(result.kit.tempo.bpm, 2) if result.kit.tempo else None,
    }
    if real and truth["scenario"] == "global_delay":
        row["delay_truth"] = {k: v["ms"] for k, v in truth["edit"]["delay"].items()}
    if not real and truth.get("global_delay_ms"):
        row["delay_truth"] = truth["global_delay_ms"]
    if truth["scenario"] in ("partial_cut", "partial_exclude"):
        row["snare_top_oh_l"] = move_errors(result, truth)
        row["kick_in_oh_l"] = move_errors(result, truth, "Kick In", "OH L")
    if align and meter and truth["scenario"] in ("partial_cut", "partial_exclude"):
        twin = render.parent / ("natural-" + render.name.split("-", 1)[1])
        twin_c = coherence(twin / "session", twin / "truth.json", meter, real) if twin.exists() else {}
        row["twin"] = {k: (v["median_lag_ms"], v["spread_ms"]) for k, v in twin_c.items()}
        row["before"] = {
            k: v["spread_ms"] for k, v in coherence(render / "session", render / "truth.json", meter, real).items()
        }
        for follow in ("close", "played"):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "out"
                with contextlib.redirect_stdout(io.StringIO()):
                    code = cli(["align", str(render / "session"), "--out", str(out), "--follow", follow])
                # follow=played puts the close mics back where the hits were played: the meter windows
                # them there (it windows quantised tracks at their edited times otherwise)
                played = dict(truth, quantised_tracks=[], moved=[], scenario="natural") if follow == "played" else truth
                (Path(tmp) / "truth.json").write_text(json.dumps(played))
                after = coherence(out, Path(tmp) / "truth.json", meter, real)
            row[f"after_{follow}"] = {"exit": code} | {
                k: (v["median_lag_ms"], v["spread_ms"]) for k, v in after.items()
            }
    return row


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("renders", nargs="+", type=Path)
    parser.add_argument("--align", action="store_true", help="also realign and measure with coherence.py")
    parser.add_argument(
        "--coherence", type=Path, default=Path(__file__).resolve().parents[2] / "shared/eval/coherence.py"
    )
    a = parser.parse_args()
    for render in a.renders:
        print(json.dumps(evaluate(render, align=a.align, meter=a.coherence)), flush=True)
