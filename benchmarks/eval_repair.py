"""Measure `sessionfix repair` on a session with every repairable defect at once (issue 17).

    python benchmarks/eval_repair.py DELAY_RENDER NATURAL_RENDER PARTS_RENDER WORK_DIR

DELAY_RENDER: a ../shared/eval render with the overheads delayed (`--scenario global_delay`); NATURAL_RENDER
the same kit and seed untouched (its lags are the truth to come back to); PARTS_RENDER a render_parts.py
session on that natural kit (its Bass DI, Gtr Clean and Lead Vox). The session built in WORK_DIR/session
has, on top of the late overheads: Snare Bottom in reversed polarity (as render.py renders it), a
Keys stem at the other of 44.1 and 48 kHz (the guitar, resampled, over a -50 dBFS noise floor), Room L and Room R
starting 2 s late by BWF time reference (their first 2 s cut), a DC offset of 0.01 on Lead Vox, Gtr
Clean as dual mono, Bass DI 25 ms late.
Prints what the rescan of the repaired folder still finds, the overheads' lag to Snare Top against the
untouched kit's, the resampled stem's spectrum against its source below 20 kHz, and whether the
untouched stems are byte-identical.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly, welch

from sessionfix.pipeline import scan


def _bwf(audio: np.ndarray, sr: int, time_reference: int, subtype: str = "PCM_24") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, subtype=subtype, format="WAV")
    data = buf.getvalue()
    bext = bytearray(602)
    struct.pack_into("<Q", bext, 338, time_reference)
    struct.pack_into("<H", bext, 346, 1)
    fmt_end = 12 + 8 + struct.unpack("<I", data[16:20])[0]
    body = data[12:fmt_end] + b"bext" + struct.pack("<I", len(bext)) + bytes(bext) + data[fmt_end:]
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def build(delay: Path, parts: Path, work: Path) -> Path:
    session = work / "session"
    shutil.rmtree(work, ignore_errors=True)
    session.mkdir(parents=True)
    start = 3600 * 48000  # the session starts at 01:00:00 (samples since midnight)
    for src in sorted((delay / "session").glob("*.wav")):
        audio, sr = sf.read(src, always_2d=True)
        start = 3600 * sr
        if src.stem in ("Room L", "Room R"):
            (session / src.name).write_bytes(_bwf(audio[2 * sr :], sr, start + 2 * sr))
        else:
            (session / src.name).write_bytes(_bwf(audio, sr, start))
    for name in ("Bass DI", "Gtr Clean", "Lead Vox"):
        audio, sr = sf.read(parts / "session" / f"{name}.wav", always_2d=True)
        if name == "Bass DI":
            shift = round(0.025 * sr)
            audio = np.concatenate((np.zeros((shift, audio.shape[1])), audio[:-shift]))
        if name == "Lead Vox":
            audio = audio * 0.9 + 0.01
        if name == "Gtr Clean":
            # the keys: the guitar at the other of 44.1 and 48 kHz (render_real.py renders at 44.1) over a
            # -50 dBFS noise floor, so every band up to 20 kHz has something to compare
            other = 44100 if sr != 44100 else 48000
            keys = resample_poly(audio[:, 0], other // 300, sr // 300)
            keys = keys + 10 ** (-50 / 20) * np.random.default_rng(0).standard_normal(len(keys))
            sf.write(session / "Keys.wav", keys, other, subtype="PCM_24")
            audio = np.repeat(audio[:, :1], 2, axis=1)
        (session / f"{name}.wav").write_bytes(_bwf(audio, sr, start))
    return session


def _lag(result, close: str, reference: str) -> float | None:  # type: ignore[no-untyped-def]
    pair = next((p for p in result.kit.pairs if p.close == close and p.reference == reference), None)
    return None if pair is None else pair.natural_lag_ms


def main() -> None:
    delay, natural, parts, work = (Path(a) for a in sys.argv[1:5])
    session = build(delay, parts, work)
    fixed = work / "fixed"
    run = subprocess.run(
        [sys.executable, "-m", "sessionfix.cli", "repair", str(session), "--out", str(fixed), "--force"],
        capture_output=True,
        text=True,
    )
    print(run.stdout[-3000:], run.stderr[-2000:], "exit", run.returncode)
    after = scan(fixed)
    untouched = scan(natural / "session")
    kinds = ("mic_delay", "polarity", "sample_rate_mismatch", "length_mismatch", "dc_offset", "dual_mono")
    kinds += ("track_offset",)
    still = [(f.kind, f.track, f.value) for f in after.findings if f.kind in kinds]
    lags = {
        ref: (_lag(after, "Snare Top.wav", ref), _lag(untouched, "Snare Top.wav", ref))
        for ref in ("OH L.wav", "OH R.wav", "Room L.wav", "Room R.wav")
    }
    source, sr_in = sf.read(session / "Keys.wav")
    out, sr_out = sf.read(fixed / "Keys.wav")
    # power spectra on the same 1 Hz grid (a segment of one second at either rate), summed in third-octave
    # bands from 31.5 Hz to 20 kHz
    f_in, p_in = welch(source, sr_in, nperseg=sr_in)
    f_out, p_out = welch(out, sr_out, nperseg=sr_out)
    centres = 1000 * 2 ** (np.arange(-15, 14) / 3)
    diff_db = np.array(
        [
            10
            * np.log10(
                p_out[(f_out >= c / 2 ** (1 / 6)) & (f_out < c * 2 ** (1 / 6))].sum()
                / p_in[(f_in >= c / 2 ** (1 / 6)) & (f_in < c * 2 ** (1 / 6))].sum()
            )
            for c in centres
            if c * 2 ** (1 / 6) <= 20000
        ]
    )
    same = {p.name: p.read_bytes() == (fixed / p.name).read_bytes() for p in sorted(session.glob("*.wav"))}
    edits = json.loads((fixed / "sessionfix-edits.json").read_text())
    print(
        json.dumps(
            {
                "still_found": still,
                "lag_to_snare_top_ms_after_vs_untouched": lags,
                "keys_third_octaves_31hz_20khz_max_abs_diff_db": round(float(np.max(np.abs(diff_db))), 3),
                "byte_identical": [n for n, s in same.items() if s],
                "rewritten": [n for n, s in same.items() if not s],
                "operations": [(o["track"], o["repair"], o["value"]) for o in edits["operations"]],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
