"""Time pitched parts played in common rhythms: is a part late only by its latency, with no phrase out of time?

    python benchmarks/eval_rhythms.py

A synthetic plucked bass (harmonic notes, 0.3 s decay) in 12 bars of each pattern, at 90, 120 and 160 bpm,
with 4 or 8 ms of human jitter (normal) and a latency of 0, +25 or -15 ms on the whole track, against a
straight drum grid. Patterns: quarters, off-beat eighths, straight eighths, swung eighths (the "and" at
60 % of the beat), a shuffle (two thirds), triplets (12/8), a funk line in sixteenths, pushes (notes an
eighth and a sixteenth before the beat). Notes closer than 130 ms are skipped (shorter than a note the
pitch stage reads). A case passes when the part's placement is within 4 ms of the latency, `track_offset`
is reported exactly when the latency is 10 ms or more, and no `out_of_time` is. Prints each failure and
the count.
"""

from __future__ import annotations

import numpy as np

from sessionfix.grid import Tempo
from sessionfix.parts import PartsParams, analyse_part, combine_parts

SR = 48000
PATTERNS = {  # beats from each bar's downbeat (4/4)
    "quarters": [0, 1, 2, 3],
    "off-beats": [0.5, 1.5, 2.5, 3.5],
    "eighths": [k / 2 for k in range(8)],
    "swung eighths": [0, 0.6, 1, 1.6, 2, 2.6, 3, 3.6],
    "shuffle": [0, 2 / 3, 1, 5 / 3, 2, 8 / 3, 3, 11 / 3],
    "triplets": [k / 3 for k in range(12)],
    "funk sixteenths": [0, 0.25, 0.75, 1.5, 1.75, 2, 2.5, 3.25, 3.75],
    "pushes": [0, 1.5, 2, 3.5, 3.75],
}


def plucked(starts_s: np.ndarray, length_s: float, rng: np.random.Generator) -> np.ndarray:
    """Harmonic notes (A2, C3, D3, E3 in turn) at `starts_s`, each `length_s` long, over a -80 dB noise floor."""
    t = np.arange(int(length_s * SR)) / SR
    out = np.zeros(int((starts_s.max() + 1.5) * SR))
    for start, midi in zip(starts_s, [45, 48, 50, 52] * len(starts_s), strict=False):
        f = 440.0 * 2 ** ((midi - 69) / 12)
        i = int(start * SR)
        out[i : i + len(t)] += sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 5)) * np.exp(-t / 0.3)
    return 0.4 * out / np.abs(out).max() + 1e-4 * rng.standard_normal(len(out))


def main() -> None:
    failures = cases = 0
    for bpm in (90, 120, 160):
        beat = 60.0 / bpm
        tempo = Tempo.straight(bpm=bpm, first_beat_s=0.5, meter=4, end_s=0.5 + 48 * beat + 2.0)
        for seed, (name, pattern) in enumerate(PATTERNS.items()):
            beats = np.concatenate([4 * bar + np.array(pattern) for bar in range(12)])
            gap_s = float(np.diff(beats).min()) * beat
            if gap_s < 0.13:
                continue
            for jitter_ms in (4.0, 8.0):
                for latency_ms in (0.0, 25.0, -15.0):
                    rng = np.random.default_rng([bpm, seed, int(jitter_ms), int(latency_ms) + 100])
                    starts = 0.5 + beats * beat + (latency_ms + rng.normal(0.0, jitter_ms, len(beats))) / 1e3
                    part = analyse_part(
                        plucked(starts, min(0.9 * gap_s, 0.4), rng),
                        sr=SR,
                        track="Bass.wav",
                        a4_hz=440.0,
                        tempo=tempo,
                        params=PartsParams(),
                        role="bass",
                    )
                    findings = combine_parts([part], tempo=tempo, params=PartsParams()).findings
                    offsets = [f.value for f in findings if f.kind == "track_offset"]
                    phrases = [f.value for f in findings if f.kind == "out_of_time"]
                    cases += 1
                    if (
                        abs(part.placement_ms - latency_ms) >= 4.0
                        or len(offsets) != (1 if abs(latency_ms) >= 10 else 0)
                        or phrases
                    ):
                        failures += 1
                        print(
                            f"{bpm} bpm {name}, jitter {jitter_ms} ms, latency {latency_ms:+.0f} ms: placement "
                            f"{part.placement_ms:+.1f} ms, track_offset {offsets}, out_of_time {phrases}"
                        )
    print(f"{failures} of {cases} cases failed")


if __name__ == "__main__":
    main()
