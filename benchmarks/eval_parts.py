"""Measure the parts analysis against renders of ../shared/eval/render(_real).py + render_parts.py, and
against a real sung take with reference f0 (vocadito, CC BY 4.0, in the mirdata repository).

    python benchmarks/eval_parts.py [--vocadito DIR] RENDER_DIR [RENDER_DIR ...]

Per render (truth.json "parts"), one line each:
- out_of_tune recall: injected notes 20+ cents off their track's tuning covered by a finding;
  precision: the analysed notes inside out_of_tune findings that lie on an injected note;
- Gtr Clean track_tuning (truth -28 cents), the share of its late bars 9-12 covered by out_of_time and
  the finding's ms (truth 35 ms), every other timing finding (false);
- a copy of the session with Bass DI delayed by 25 ms: the track_offset findings (truth: Bass DI only,
  +25 ms);
- attack timing: the analysed note starts against the injected notes' exact starts (ms).
Then the totals, and for vocadito (DIR holds vocadito_1.wav and vocadito_1_f0.csv, taken from the mirdata
repository's tests/resources/mir_datasets/vocadito): the share of reference-voiced frames whose f0 is
within 20 cents, side by side with librosa's yin and pyin when librosa is installed, the pitch stage's
speed, and the out_of_tune findings on the untouched take. Reads only truth.json and the session.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from sessionfix.findings import Finding
from sessionfix.parts import ANALYSIS_SR, HOP, PartsParams, analyse_part, yin
from sessionfix.pipeline import Scan, scan

PITCHED = ("Bass DI", "Gtr Clean", "Lead Vox")


def _spans(findings: tuple[Finding, ...], kind: str, track: str) -> list[tuple[float, float]]:
    return [(f.start_s or 0.0, f.end_s or 0.0) for f in findings if f.kind == kind and f.track == track + ".wav"]


def _tuning_scores(result: Scan, parts: dict) -> tuple[int, int, int, int]:
    """(injected notes covered, injected notes, flagged notes on an injected note, flagged notes)."""
    covered = injected = true_flags = flags = 0
    for name in PITCHED:
        truth = parts[name]
        wrong = [d for d in truth["defects"] if abs(d["cents"] - truth["global_cents"]) >= 20]
        spans = _spans(result.findings, "out_of_tune", name)
        for d in wrong:
            injected += 1
            mid = (d["start_s"] + d["end_s"]) / 2
            covered += any(a - 0.05 <= mid <= b + 0.05 for a, b in spans)
        analysed = next(p for p in result.parts.parts if p.track == name + ".wav")
        for note in analysed.notes:
            mid = (note.start_s + note.end_s) / 2
            if any(a - 1e-3 <= note.start_s <= b + 1e-3 for a, b in spans):
                flags += 1
                true_flags += any(d["start_s"] - 0.02 <= mid <= d["end_s"] + 0.02 for d in wrong)
    return covered, injected, true_flags, flags


def _signs(result: Scan, parts: dict) -> tuple[int, int]:
    """(out_of_tune findings on injected notes whose sign is the injected one, such findings)."""
    right = total = 0
    for name in PITCHED:
        truth = parts[name]
        wrong = [d for d in truth["defects"] if abs(d["cents"] - truth["global_cents"]) >= 20]
        for f in result.findings:
            if f.kind != "out_of_tune" or f.track != name + ".wav":
                continue
            lo, hi = (f.start_s or 0) - 0.05, (f.end_s or 0) + 0.05
            on = [d for d in wrong if lo <= (d["start_s"] + d["end_s"]) / 2 <= hi]
            if on:
                total += 1
                injected = np.median([d["cents"] - truth["global_cents"] for d in on])
                right += bool(np.sign(f.value or 0) == np.sign(injected))
    return right, total


def _attack_errors_ms(result: Scan, parts: dict) -> list[float]:
    """Analysed note start minus the injected start (ms) for every injected note with an exact start."""
    errors = []
    for name in PITCHED:
        analysed = next(p for p in result.parts.parts if p.track == name + ".wav")
        starts = np.array([n.start_s for n in analysed.notes])
        for d in parts[name]["defects"]:
            if len(starts):
                nearest = starts[np.argmin(np.abs(starts - d["start_s"]))]
                if abs(nearest - d["start_s"]) < 0.1:
                    errors.append((nearest - d["start_s"]) * 1e3)
    return errors


def _delayed_bass(render: Path, ms: float) -> tuple[list[Finding], float]:
    """track_offset findings on a copy of the session whose Bass DI starts `ms` later, and the bass's
    measured placement against the kit there (ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp, "session")
        shutil.copytree(render / "session", copy)
        path = copy / "Bass DI.wav"
        audio, sr = sf.read(path, always_2d=True)
        shift = round(ms * 1e-3 * sr)
        delayed = np.concatenate((np.zeros((shift, audio.shape[1])), audio[:-shift]))
        sf.write(path, delayed, sr, subtype=sf.info(str(render / "session" / "Bass DI.wav")).subtype)
        result = scan(str(copy))
        bass = next(p for p in result.parts.parts if p.track == "Bass DI.wav")
        return [f for f in result.findings if f.kind == "track_offset"], bass.placement_ms


def eval_render(render: Path) -> dict:
    truth = json.loads((render / "truth.json").read_text())
    parts = truth["parts"]
    result = scan(str(render / "session"))
    covered, injected, true_flags, flags = _tuning_scores(result, parts)
    gtr = parts["Gtr Clean"]
    late = (gtr["bar_s"][8], gtr["bar_s"][12])
    gtr_time = [f for f in result.findings if f.kind == "out_of_time" and f.track == "Gtr Clean.wav"]
    cover = sum(max(0.0, min(f.end_s or 0, late[1]) - max(f.start_s or 0, late[0])) for f in gtr_time)
    tuning = {f.track: f.value for f in result.findings if f.kind == "track_tuning"}
    false_timing = [
        (f.kind, f.track, f.value)
        for f in result.findings
        if f.kind in ("out_of_time", "track_offset")
        and not (f.track == "Gtr Clean.wav" and min(f.end_s or 0, late[1]) > max(f.start_s or 0, late[0]))
    ]
    offsets, delayed_placement = _delayed_bass(render, 25.0)
    placement = {p.track.removesuffix(".wav"): round(p.placement_ms, 1) for p in result.parts.parts}
    errors = _attack_errors_ms(result, parts)
    return {
        "render": render.name,
        "tempo_bpm": truth["bpm"],
        "recall": [covered, injected],
        "precision": [true_flags, flags],
        "sign_right": list(_signs(result, parts)),
        "gtr_tuning": tuning.get("Gtr Clean.wav"),
        "gtr_late_cover": round(cover / (late[1] - late[0]), 3),
        "gtr_late_ms": [f.value for f in gtr_time],
        "false_timing": false_timing,
        "placement_ms": placement,
        "bass_delay_25ms": [(f.track, f.value) for f in offsets],
        "bass_delay_shift_ms": round(delayed_placement - placement["Bass DI"], 1),
        "attack_ms_median_p90": [round(float(np.median(errors)), 1), round(float(np.percentile(np.abs(errors), 90)), 1)]
        if errors
        else None,
    }


def eval_vocadito(folder: Path) -> dict:
    audio, sr = sf.read(folder / "vocadito_1.wav", always_2d=True)
    mono = audio.mean(axis=1)
    reference = np.loadtxt(folder / "vocadito_1_f0.csv", delimiter=",")

    def within_20_cents(f0: np.ndarray, times: np.ndarray) -> float:
        ref = reference[np.clip(np.searchsorted(reference[:, 0], times), 0, len(reference) - 1), 1]
        voiced = ref > 0
        ok = voiced & np.isfinite(f0) & (f0 > 0)
        cents = 1200 * np.abs(np.log2(np.where(ok, f0, 1.0) / np.where(ok, ref, 1.0)))
        return round(float(np.sum(ok & (cents < 20)) / np.sum(voiced)), 3)

    params = PartsParams()
    start = time.perf_counter()
    analyse_part(mono, sr=sr, track="Lead Vox.wav", a4_hz=440.0, tempo=None, params=params)
    speed = len(mono) / sr / (time.perf_counter() - start)
    f0, times = yin(mono, sr, threshold=params.yin_threshold)
    out: dict = {"f0_within_20c": within_20_cents(f0, times), "pitch_stage_x_realtime": round(speed)}
    try:
        import librosa
        from scipy.signal import resample_poly

        y = resample_poly(mono, ANALYSIS_SR, sr)
        frame_times = librosa.frames_to_time(np.arange(len(y) // HOP + 1), sr=ANALYSIS_SR, hop_length=HOP)
        librosa.yin(y[:ANALYSIS_SR], fmin=40, fmax=1000, sr=ANALYSIS_SR, frame_length=1024, hop_length=HOP)  # compile
        start = time.perf_counter()
        f0_yin = librosa.yin(y, fmin=40, fmax=1000, sr=ANALYSIS_SR, frame_length=1024, hop_length=HOP)
        yin_speed = len(mono) / sr / (time.perf_counter() - start)
        start = time.perf_counter()
        f0_pyin, voiced, _ = librosa.pyin(y, fmin=40, fmax=1000, sr=ANALYSIS_SR, frame_length=1024, hop_length=HOP)
        pyin_speed = len(mono) / sr / (time.perf_counter() - start)
        out["librosa_yin"] = [within_20_cents(f0_yin, frame_times[: len(f0_yin)]), round(yin_speed)]
        out["librosa_pyin"] = [
            within_20_cents(np.where(voiced, f0_pyin, np.nan), frame_times[: len(f0_pyin)]),
            round(pyin_speed),
        ]
    except ImportError:
        out["librosa"] = "not installed: no side-by-side figures"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "session").mkdir()
        shutil.copy(folder / "vocadito_1.wav", Path(tmp, "session", "Lead Vox.wav"))
        findings = [f for f in scan(str(Path(tmp, "session"))).findings if f.kind == "out_of_tune"]
    out["out_of_tune_findings"] = [(f.start_s, f.count, f.value) for f in findings]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("renders", nargs="*", type=Path)
    ap.add_argument("--vocadito", type=Path, help="folder with vocadito_1.wav and vocadito_1_f0.csv")
    args = ap.parse_args()
    rows = []
    for render in args.renders:
        row = eval_render(render)
        rows.append(row)
        print(json.dumps(row))
    if rows:
        recall = np.sum([r["recall"] for r in rows], axis=0)
        precision = np.sum([r["precision"] for r in rows], axis=0)
        bass = [v for r in rows for t, v in r["bass_delay_25ms"] if t == "Bass DI.wav"]
        total = {
            "renders": len(rows),
            "out_of_tune_recall": round(recall[0] / max(recall[1], 1), 3),
            "out_of_tune_precision": round(precision[0] / max(precision[1], 1), 3),
            "out_of_tune_sign_right": "{}/{}".format(*np.sum([r["sign_right"] for r in rows], axis=0).tolist()),
            "gtr_tuning_range": [min(r["gtr_tuning"] or 0 for r in rows), max(r["gtr_tuning"] or 0 for r in rows)],
            "gtr_late_cover_min": min(r["gtr_late_cover"] for r in rows),
            "gtr_late_ms": sorted(v for r in rows for v in r["gtr_late_ms"]),
            "false_timing_findings": sum(len(r["false_timing"]) for r in rows),
            "bass_25ms_found": f"{len(bass)}/{len(rows)}",
            "bass_25ms_values": bass,
            "bass_25ms_other_tracks": sum(t != "Bass DI.wav" for r in rows for t, _ in r["bass_delay_25ms"]),
            "bass_25ms_shift_vs_untouched": [r["bass_delay_shift_ms"] for r in rows],
        }
        print(json.dumps({"total": total}))
    if args.vocadito:
        print(json.dumps({"vocadito": eval_vocadito(args.vocadito)}))


if __name__ == "__main__":
    main()
