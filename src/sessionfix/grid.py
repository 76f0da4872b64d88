"""Tempo, beats and bars from drum hits (a straight grid: one tempo over the song).

Conventions: hit positions in samples on the session timeline in; seconds out (`Tempo`), since the
grid is used at the report boundary and to express positions as bars. The grid is a sixteenth-note
lattice fitted by least squares to the hits, so quantised hits land on it to the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_BPM, MAX_BPM = 60.0, 200.0
PRIOR_BPM = 120.0  # centre of the log-normal tempo prior that settles half/double-tempo ambiguity
PRIOR_OCTAVES = 1.0  # its width


@dataclass(frozen=True)
class Tempo:
    """A straight grid: `beat_s` per quarter note, first beat at `first_beat_s`, bars of `meter` beats."""

    bpm: float
    first_beat_s: float  # a downbeat: bar 0 starts here
    meter: int
    end_s: float

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    @property
    def beats_s(self) -> np.ndarray:
        n = int(np.floor((self.end_s - self.first_beat_s) / self.beat_s)) + 1
        return self.first_beat_s + np.arange(max(n, 0)) * self.beat_s

    def bar_of(self, t_s: float) -> int:
        """0-based bar number of a time (negative before the first downbeat)."""
        return int(np.floor((t_s - self.first_beat_s) / (self.beat_s * self.meter) + 1e-9))

    def bar_number(self, t_s: float) -> int:
        """The bar a musician counts, 1 at the first downbeat (as a DAW's bars|beats ruler does when
        bar 1 is set on the song's first downbeat)."""
        return self.bar_of(t_s) + 1

    def beat_in_bar(self, t_s: float) -> float:
        """The beat within its bar, from 1.0 (the downbeat) to meter + 0.99."""
        beats = (t_s - self.first_beat_s) / self.beat_s
        return float(beats - self.meter * np.floor(beats / self.meter + 1e-9) + 1.0)

    def bar_span(self, start_s: float, end_s: float) -> str:
        """'bar 3' or 'bars 3-5': the bars (counted from 1) that [start_s, end_s] touches."""
        a, b = self.bar_number(start_s), self.bar_number(end_s)
        return f"bar {a}" if a == b else f"bars {a}-{b}"

    def grid_error_s(self, times_s: np.ndarray, *, division: int = 4) -> np.ndarray:
        """Signed distance of each time from the nearest 1/`division` beat, seconds."""
        step = self.beat_s / division
        k = np.round((times_s - self.first_beat_s) / step)
        return times_s - (self.first_beat_s + k * step)


def _periodicity(times_s: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Autocorrelation of a smoothed impulse train of the hits (5 ms resolution, up to 2.5 s)."""
    rate = 200.0
    n = int(times_s.max() * rate) + 400
    train = np.zeros(n)
    np.add.at(train, np.round(times_s * rate).astype(int), weights)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)  # sigma 10 ms: human timing blur
    train = np.convolve(train, kernel, mode="same")
    spectrum = np.fft.rfft(train, 2 * n)
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[: int(2.5 * rate)]
    return np.arange(len(ac)) / rate, ac / (ac[0] + 1e-12)


def _densest_phase(times_s: np.ndarray, step: float, *, width: float) -> float:
    """The phase (seconds, modulo `step`) shared by the most hits, within `width`."""
    phases = np.sort(np.mod(times_s, step))
    wrapped = np.concatenate((phases, phases + step))
    counts = np.searchsorted(wrapped, wrapped[: len(phases)] + width, side="right") - np.arange(len(phases))
    best = int(np.argmax(counts))
    return float(np.median(wrapped[best : best + counts[best]]))


def estimate_tempo(
    times_s: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    end_s: float,
    meter: int = 4,
    downbeat_times_s: np.ndarray | None = None,
    bpm_hint: float | None = None,
) -> Tempo | None:
    """A straight tempo grid fitted to drum hits; None with fewer than 8 hits.

    times_s : hit times, seconds. weights : per hit (louder hits count more). downbeat_times_s : the
    kick hits, which mark beats 1 and 3 in most grooves and so place the bar line. bpm_hint : a tempo
    already known (from the whole kit), to fit only this set of hits' lattice to.
    """
    times_s = np.sort(np.asarray(times_s, float))
    if len(times_s) < 8:
        return None
    weights = np.ones(len(times_s)) if weights is None else np.asarray(weights, float)
    lags, ac = _periodicity(times_s, weights)
    best_bpm, best_score = bpm_hint or PRIOR_BPM, -np.inf
    for bpm in np.arange(MIN_BPM, MAX_BPM, 0.25) if bpm_hint is None else ():
        beat = 60.0 / bpm
        # comb over the beat and its first multiples, plus the eighth-note level
        idx = [int(round(k * beat * 200)) for k in (1, 2, 3, 4)]
        score = sum(ac[i] for i in idx if i < len(ac)) + 0.5 * ac[int(round(beat * 100))]
        score *= np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
        if score > best_score:
            best_bpm, best_score = bpm, score

    # Least-squares refinement of period and phase on the sixteenth lattice: first the period, loosely,
    # then the phase where most hits agree (quantised hits share one to the sample), then both again
    # on the hits that sit on that lattice.
    step = 60.0 / best_bpm / 4
    phase = float(times_s[0])
    tolerance = 0.3 * step
    for i in range(2 if bpm_hint else 0, 8):  # a known tempo needs no loose period fit
        if i == 2:
            phase = _densest_phase(times_s, step, width=0.001)
            tolerance = 0.002  # from here on, only the hits on that lattice
        k = np.round((times_s - phase) / step)
        residual = np.abs(times_s - (phase + k * step))
        close = residual < tolerance
        if close.sum() < 4:
            break
        a = np.vstack([np.ones(close.sum()), k[close]]).T
        (phase, step), *_ = np.linalg.lstsq(a, times_s[close], rcond=None)
        if i >= 3:
            tolerance = min(tolerance, max(3 * float(np.median(residual[close])), 0.0005))
    bpm = 60.0 / (4 * step)

    # Which sixteenth is a beat, and which beat starts a bar: where the kicks (else all hits) fall.
    anchors = np.asarray(
        downbeat_times_s if downbeat_times_s is not None and len(downbeat_times_s) >= 4 else times_s, float
    )
    k = np.round((anchors - phase) / step).astype(int)
    bar_len = 4 * meter
    counts = np.bincount(k % bar_len, minlength=bar_len)
    # kicks on beats 1 and 3 (sixteenths 0 and 8 of the bar in 4/4): pick the offset that fits best
    pattern = np.zeros(bar_len)
    pattern[0], pattern[bar_len // 2] = 1.0, 0.6
    scores = [float(np.dot(np.roll(counts, -off), pattern)) for off in range(bar_len)]
    # beats 1 and 3 both carry kicks: among the offsets that fit almost as well as the best, take the
    # one that puts the first kick on beat 1 (songs start on a downbeat)
    good = [off for off in range(bar_len) if scores[off] >= 0.75 * max(scores)]
    first_kick = int(k[np.argmin(anchors)]) % bar_len
    offset = first_kick if first_kick in good else int(np.argmax(scores))
    first = phase + offset * step
    bar = bar_len * step
    first -= np.floor((first - times_s[0] + 0.5 * step) / bar) * bar  # the first bar line at or before the first hit
    return Tempo(bpm=float(bpm), first_beat_s=float(first), meter=meter, end_s=float(end_s))
