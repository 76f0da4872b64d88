"""Tempo, beats and bars from drum hits: a beat map that follows the drummer.

Conventions: hit times in seconds in; a `Tempo` of beat times (seconds) out. Between and around beats,
positions are interpolated (and extrapolated before the first and after the last hit), so a hit's
distance from the grid is measured against the beats around it, not against one straight tempo: a
drummer who drifts a few bpm over a song stays on the grid. Quantised hits sit on a straight grid, and
the local fits reproduce it to the sample.

How the map is found:
1. The beat period: the hits' periodicity (autocorrelation of an impulse train) scored over 60-200 bpm.
   Where there is a snare, its backbeat settles the octave: a snare on 2 and 4 repeats every two beats,
   so the beat is half the snare's period (no 62 -> 124 or 190 -> 127 confusion); without one, a
   log-normal prior around 120 bpm. A beat that puts most of the snare between the beats the kick marks
   is two beats (a snare pattern that repeats most strongly over a bar).
2. Tracking: every hit gets its sixteenth-note index from a running local fit of the hits before it
   (the tempo may drift, never jump by more than a fraction of a sixteenth per hit).
3. The beats: a local, robust linear fit of hit time against index around every beat (a Gaussian window
   of one bar each side): exact on a quantised grid, smooth on a human one.
4. Bar lines: kicks on beats 1 and 3, snares on 2 and 4 choose which beat starts the bar. Bars are
   reckoned from the first downbeat the drums play (`bar_of` 0). For people they count from 1: after a
   pickup (a lead-in shorter than a bar) bar 1 is the first downbeat; after a count-in or an intro
   without drums, bar 1 is the bar the session starts in, as the DAW's ruler shows it (`bar_number`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import bdtrc

MIN_BPM, MAX_BPM = 60.0, 200.0
PRIOR_BPM = 120.0  # centre of the log-normal tempo prior used where no backbeat settles the octave
PRIOR_OCTAVES = 1.0  # its width
STEPS_PER_BEAT = 4  # the tracking lattice: sixteenth notes (and a grid error's default grid)
# ...or twelfths, which hold the triplets (0, 4, 8) too: a shuffle's off-beat (two thirds of the beat) is a
# point of it, where on the sixteenths it sat 42 ms before the "a" at 120 bpm and pulled every beat 16-26 ms
TRIPLET_LATTICE = 12
TRACK_SPAN_BEATS = 8  # hits this far back (two bars) fix the running tempo and phase while tracking
FIT_SIGMA_BEATS = 4.0  # width of the local fit around each beat (one bar)


@dataclass(frozen=True)
class Tempo:
    """Beat times following the drummer; bars of `meter` beats, the first downbeat at beat `downbeat`."""

    beat_times_s: tuple[float, ...]  # increasing, spanning the song
    meter: int
    downbeat: int  # index into beat_times_s of the first downbeat (bar_of 0)
    end_s: float

    @classmethod
    def straight(cls, *, bpm: float, first_beat_s: float, meter: int, end_s: float) -> Tempo:
        """One tempo from the song's start to its end, the first downbeat at `first_beat_s`."""
        beat = 60.0 / bpm
        before = int(np.ceil(first_beat_s / beat)) if first_beat_s > 0 else 0
        count = before + int(np.ceil((end_s - first_beat_s) / beat)) + 2
        beats = first_beat_s + (np.arange(count) - before) * beat
        return cls(beat_times_s=tuple(float(b) for b in beats), meter=meter, downbeat=before, end_s=end_s)

    @property
    def beats_s(self) -> np.ndarray:
        return np.asarray(self.beat_times_s)

    @property
    def beat_s(self) -> float:
        """The typical beat period, seconds."""
        return float(np.median(np.diff(self.beats_s)))

    @property
    def bpm(self) -> float:
        return 60.0 / self.beat_s

    @property
    def first_beat_s(self) -> float:
        """Where the first downbeat is, seconds."""
        return float(self.beat_times_s[self.downbeat])

    def beat_index(self, t_s: np.ndarray | float) -> np.ndarray:
        """Fractional beat number of each time (0 at the first beat of the map), interpolated between
        beats and extrapolated at the ends with the nearest beat period."""
        beats = self.beats_s
        t = np.asarray(t_s, float)
        index = np.interp(t, beats, np.arange(len(beats)))
        before, after = t < beats[0], t > beats[-1]
        index = np.where(before, (t - beats[0]) / (beats[1] - beats[0]), index)
        return np.where(after, len(beats) - 1 + (t - beats[-1]) / (beats[-1] - beats[-2]), index)

    def time_of(self, beat: np.ndarray | float) -> np.ndarray:
        """Seconds at a fractional beat number (the inverse of beat_index)."""
        beats = self.beats_s
        b = np.asarray(beat, float)
        t = np.interp(b, np.arange(len(beats)), beats)
        t = np.where(b < 0, beats[0] + b * (beats[1] - beats[0]), t)
        return np.where(b > len(beats) - 1, beats[-1] + (b - len(beats) + 1) * (beats[-1] - beats[-2]), t)

    def bar_of(self, t_s: float) -> int:
        """0-based bar number of a time (negative before the first downbeat)."""
        return int(np.floor((float(self.beat_index(t_s)) - self.downbeat) / self.meter + 1e-9))

    @property
    def first_bar(self) -> int:
        """0-based bar (see `bar_of`) counted as bar 1. A lead-in shorter than a bar before the first
        downbeat is a pickup: bar 1 is the first downbeat and the pickup is 'the pickup'. A longer one
        (a count-in, an intro without drums) is numbered as the DAW's ruler does for a session bounced
        from a bar line: bar 1 is the bar the session starts in."""
        bar_s = self.meter * self.beat_s
        if self.first_beat_s < bar_s - 0.25 * self.beat_s:
            return 0
        return min(self.bar_of(0.25 * self.beat_s), 0)  # a quarter beat in: a bar line at 0 +- rounding

    def bar_number(self, t_s: float) -> int:
        """The bar an engineer counts, from 1 (see `first_bar`); 0 or less in a pickup."""
        return self.bar_of(t_s) - self.first_bar + 1

    def bar_start_s(self, bar: int) -> float:
        """Where 0-based bar `bar` (see `bar_of`) starts, seconds."""
        return float(self.time_of(self.downbeat + bar * self.meter))

    def beat_in_bar(self, t_s: float) -> float:
        """The beat within its bar, from 1.0 (the downbeat) to meter + 0.99."""
        beats = float(self.beat_index(t_s)) - self.downbeat
        return float(beats - self.meter * np.floor(beats / self.meter + 1e-9) + 1.0)

    def bar_number_start_s(self, number: int) -> float:
        """Where bar `number` (counted from 1, see `bar_number`) starts, seconds (may be before 0)."""
        return self.bar_start_s(number - 1 + self.first_bar)

    def bar_span(self, start_s: float, end_s: float) -> str:
        """'bar 3', 'bars 3-5', 'the pickup' or 'the pickup to bar 2': the bars [start_s, end_s] touches."""
        a, b = self.bar_number(start_s), self.bar_number(end_s)
        if b < 1:
            return "the pickup"
        if a < 1:
            return f"the pickup to bar {b}"
        return f"bar {a}" if a == b else f"bars {a}-{b}"

    def grid_error_s(self, times_s: np.ndarray, *, division: int = STEPS_PER_BEAT) -> np.ndarray:
        """Signed distance of each time from the nearest 1/`division` beat, seconds."""
        times = np.asarray(times_s, float)
        nearest = np.round(self.beat_index(times) * division) / division
        return times - self.time_of(nearest)


# ------------------------------------------------------------------------------------- estimation
def _periodicity(times_s: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Autocorrelation of a smoothed impulse train of the hits (5 ms resolution, up to 2.5 s)."""
    rate = 200.0
    n = int(times_s.max() * rate) + 600
    train = np.zeros(n)
    np.add.at(train, np.round(times_s * rate).astype(int), weights)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)  # sigma 10 ms: human timing blur
    train = np.convolve(train, kernel, mode="same")
    spectrum = np.fft.rfft(train, 2 * n)
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[: int(2.5 * rate)]
    return np.arange(len(ac)) / rate, ac / (ac[0] + 1e-12)


def _at(ac: np.ndarray, period_s: float) -> float:
    i = period_s * 200.0
    return float(np.interp(i, np.arange(len(ac)), ac)) if i < len(ac) - 1 else 0.0


def _comb(ac: np.ndarray, bpm: float) -> float:
    """How strongly the hits repeat at this beat period and its multiples, plus the eighth-note level."""
    beat = 60.0 / bpm
    return sum(_at(ac, k * beat) for k in (1, 2, 3, 4)) + 0.5 * _at(ac, beat / 2)


def _beat_period(
    times_s: np.ndarray, weights: np.ndarray, backbeat_s: np.ndarray | None, bpm_hint: float | None = None
) -> float:
    """Seconds per beat (see the module docstring, step 1)."""
    _, ac = _periodicity(times_s, weights)
    candidates = np.arange(MIN_BPM, MAX_BPM + 0.25, 0.25)
    scores = np.array([_comb(ac, bpm) for bpm in candidates])
    if bpm_hint is not None:
        near = np.abs(np.log2(candidates / bpm_hint)) < 0.14  # within 10 %: the hint settles the octave
        if near.any():
            return 60.0 / float(candidates[int(np.argmax(np.where(near, scores, -np.inf)))])
    if backbeat_s is not None and len(backbeat_s) >= 8:
        _, snare_ac = _periodicity(np.sort(backbeat_s), np.ones(len(backbeat_s)))
        # the snare's period: two beats, in 0.6-2 s (60-200 bpm); the strongest repetition wins, and a
        # period twice a nearly as strong one (a snare on every beat of half-time feel) yields to it
        periods = np.arange(0.6, 2.0, 0.005)
        strength = np.array([_at(snare_ac, p) for p in periods])
        best = float(periods[int(np.argmax(strength))])
        half = float(periods[int(np.argmin(np.abs(periods - best / 2)))]) if best / 2 >= 0.6 else None
        if half is not None and _at(snare_ac, half) >= 0.8 * strength.max():
            best = half
        near = np.abs(np.log2(60.0 / candidates / (best / 2))) < 0.08  # within ~6% of half the snare period
        if near.any():
            scores = np.where(near, scores, -np.inf)
            return 60.0 / float(candidates[int(np.argmax(scores))])
    prior = np.exp(-0.5 * (np.log2(candidates / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    return 60.0 / float(candidates[int(np.argmax(scores * prior))])


BETWEEN_P = 0.05  # the odds of so many snare hits between the beats when a beat's two sides are equally likely


def _backbeat_between_beats(kicks_s: np.ndarray | None, snares_s: np.ndarray | None, beat_s: float) -> bool:
    """Whether the snare sits half a beat from the beats the kick marks, more often than on them, beyond
    chance (BETWEEN_P): then the "beat" is two of the song's, the backbeat on its off-beats (a snare pattern
    repeating most strongly over a bar: 2, 4 and a ghost note read as a half-tempo backbeat). A groove's
    backbeat falls on beats. Each snare hit's phase is taken from the kick before it, within two beats, so
    the tempo's drift does not blur it."""
    if kicks_s is None or snares_s is None or len(kicks_s) < 8 or len(snares_s) < 8:
        return False
    kicks, snares = np.sort(np.asarray(kicks_s, float)), np.asarray(snares_s, float)
    before = np.searchsorted(kicks, snares) - 1
    since = snares[before >= 0] - kicks[before[before >= 0]]
    phase = (since[since < 2 * beat_s] / beat_s) % 1.0
    on = int(np.sum(np.minimum(phase, 1.0 - phase) < 0.125))
    between = int(np.sum(np.abs(phase - 0.5) < 0.125))
    return between > on and float(bdtrc(between - 1, between + on, 0.5)) <= BETWEEN_P


def _track(times_s: np.ndarray, step_s: float, *, lattice: int = STEPS_PER_BEAT) -> tuple[np.ndarray, np.ndarray]:
    """Lattice index of every hit (`lattice` points a beat, `step_s` apart; and which hits sit on the
    lattice), following tempo drift.

    The first hit is index 0; each next hit is placed by a weighted fit of the accepted hits of the last
    TRACK_SPAN_BEATS beats (time against index), so the period and phase follow the drummer.
    """
    n = len(times_s)
    index = np.zeros(n, int)
    on = np.zeros(n, bool)
    on[0] = True
    t_ref, k_ref, step = times_s[0], 0.0, step_s
    for i in range(1, n):
        k = int(np.round(k_ref + (times_s[i] - t_ref) / step))
        index[i] = k
        on[i] = abs(times_s[i] - (t_ref + (k - k_ref) * step)) < 0.3 * step
        recent = on[: i + 1] & (index[: i + 1] >= k - TRACK_SPAN_BEATS * lattice)
        if recent.sum() >= 4 and np.ptp(index[: i + 1][recent]) >= 2:
            ks, ts = index[: i + 1][recent].astype(float), times_s[: i + 1][recent]
            slope, intercept = np.polyfit(ks, ts, 1)
            if 0.8 * step_s < slope < 1.25 * step_s:  # a tempo may drift, never jump
                step, k_ref, t_ref = slope, ks[-1], intercept + slope * ks[-1]
        elif on[i]:
            k_ref, t_ref = float(k), times_s[i]
    return index, on


def _beats(
    times_s: np.ndarray, index: np.ndarray, on: np.ndarray, *, first: int, last: int, lattice: int = STEPS_PER_BEAT
) -> np.ndarray:
    """Beat times for lattice indices first..last in steps of a beat (`lattice` indices): a robust local
    quadratic fit around each beat (Gaussian weights of FIT_SIGMA_BEATS beats; hits far off the fit are
    down-weighted)."""
    ks, ts = index[on].astype(float), times_s[on]
    order = np.argsort(ks, kind="stable")
    ks, ts = ks[order], ts[order]
    sigma = FIT_SIGMA_BEATS * lattice
    targets = np.arange(first, last + 1, lattice, dtype=float)
    lo = np.searchsorted(ks, targets - 3 * sigma, side="left")
    hi = np.searchsorted(ks, targets + 3 * sigma, side="right")
    # each beat's hits as a row of indices into ks (padded with -1): those within 3 sigma, or at the
    # edges of the song, where fewer than three are, the nearest (the nearest fit carries on)
    rows = np.full((len(targets), max(int((hi - lo).max(initial=0)), min(len(ks), 3 * STEPS_PER_BEAT), 1)), -1)
    for j, target in enumerate(targets):
        if hi[j] - lo[j] >= 3:
            rows[j, : hi[j] - lo[j]] = np.arange(lo[j], hi[j])
        else:
            near = np.argsort(np.abs(ks - target))[: max(8, min(len(ks), 3 * STEPS_PER_BEAT))]
            rows[j, : len(near)] = near
    return _robust_quadratic_at(ks, ts, rows, targets, sigma)


def _robust_quadratic_at(
    ks: np.ndarray, ts: np.ndarray, rows: np.ndarray, targets: np.ndarray, sigma: float
) -> np.ndarray:
    """Per row of indices into (ks, ts) (-1: none), the value at its target of a weighted quadratic fit of
    time against index: Gaussian weights of `sigma` around the target, reweighted three times so that hits
    far off the fit (flams, pushes) count less. All rows at once (weighted normal equations)."""
    valid = rows >= 0
    k, t = ks[np.maximum(rows, 0)], ts[np.maximum(rows, 0)]
    origin = t[:, 0]  # times from the row's first hit: the fit's sums stay small
    y = np.where(valid, t - origin[:, None], 0.0)
    x = np.where(valid, (k - targets[:, None]) / sigma, 0.0)
    prior = np.where(valid, np.exp(-0.5 * x**2), 0.0)
    weights = prior
    powers = np.stack([x**p for p in range(5)])  # x^0 .. x^4
    for _ in range(3):
        moments = (powers * weights).sum(axis=2)  # (5, rows)
        normal = np.stack([moments[i : i + 3] for i in range(3)]).transpose(2, 0, 1)  # (rows, 3, 3)
        right = (powers[:3] * weights * y).sum(axis=2).T  # (rows, 3)
        fit = _solve_rows(normal, right)
        residual = y - (fit[:, :1] + fit[:, 1:2] * x + fit[:, 2:3] * x**2)
        spread = np.nanmedian(np.where(valid, np.abs(residual), np.nan), axis=1)
        scale = np.maximum(spread * 1.4826, 1e-4)
        weights = prior / (1 + (residual / (3 * scale[:, None])) ** 2)
    return origin + fit[:, 0]


def _solve_rows(normal: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Least-squares solutions of a stack of 3x3 normal equations (a row whose hits do not fix a
    quadratic, all on one or two indices, gets lstsq's smallest solution)."""
    out = np.empty_like(right)
    regular = np.abs(np.linalg.det(normal)) > 1e-9 * np.abs(normal).max(axis=(1, 2)) ** 3
    if regular.any():
        out[regular] = np.linalg.solve(normal[regular], right[regular][:, :, None])[:, :, 0]
    for j in np.flatnonzero(~regular):
        out[j] = np.linalg.lstsq(normal[j], right[j], rcond=None)[0]
    return out


def _downbeat(beats_s: np.ndarray, meter: int, kicks_s: np.ndarray | None, snares_s: np.ndarray | None) -> int:
    """Which beat is the first downbeat: kicks on 1 and 3, snares on 2 and 4; the first such beat at or
    after the first hit's beat (index 0 here)."""
    if meter < 2 or len(beats_s) < meter:
        return 0
    scores = np.zeros(meter)
    for times, weights in ((kicks_s, {0: 1.0, 2: 0.6}), (snares_s, {1: 1.0, 3: 1.0})):
        if times is None or not len(times):
            continue
        position = np.interp(times, beats_s, np.arange(len(beats_s)))
        whole = np.round(position).astype(int)
        on_beat = np.abs(position - whole) < 0.125  # within a 32nd of a beat
        for offset in range(meter):
            for beat, weight in weights.items():
                scores[offset] += weight * np.sum(on_beat & ((whole - offset) % meter == beat))
    best = float(scores.max())
    if kicks_s is not None and len(kicks_s):
        # beats 1 and 3 both carry kicks: among the offsets that fit almost as well as the best, the one
        # that puts the first kick on beat 1 (songs start on a downbeat)
        first_kick = int(np.round(np.interp(np.min(kicks_s), beats_s, np.arange(len(beats_s)))))
        if scores[first_kick % meter] >= 0.75 * best:
            return first_kick % meter
    return int(np.argmax(scores))


def _densest_phase(times_s: np.ndarray, step: float, *, width: float) -> tuple[float, int]:
    """The phase (seconds, modulo `step`) shared by the most hits within `width`, and how many share it."""
    phases = np.sort(np.mod(times_s, step))
    wrapped = np.concatenate((phases, phases + step))
    counts = np.searchsorted(wrapped, wrapped[: len(phases)] + width, side="right") - np.arange(len(phases))
    best = int(np.argmax(counts))
    return float(np.median(wrapped[best : best + counts[best]])), int(counts[best])


def lattice(times_s: np.ndarray, *, bpm: float, step_s: float | None = None) -> tuple[float, float, int, int] | None:
    """The straight sixteenth lattice a DAW quantises to, fitted to hits at about `bpm` (within 1 %), or
    with its step given (`step_s`): (step s, phase s, hits on it within 0.2 ms, hits within 1 ms).

    The period and phase that put the most hits within a millisecond of the lattice (quantised hits sit
    on it; played ones scatter), then both (or the phase alone) by least squares on the hits within 2, 1,
    0.5 and 0.2 ms of it while 4 are that close. Where fewer than 4 sit within 0.2 ms (a quantise below
    full strength; a mic whose samples start a varying few tenths of a ms after the grid point) the fit
    stops at the closest tolerance that keeps half of the hits within 2 ms: a fit to the few that happen
    to sit closest gets the period wrong. A second fit starts from the hits within 4 ms and refits at each
    tolerance while more hits come within it (a long song's lattice, found on a stretch of it, grows to the
    whole song); it is kept where it puts more hits within 0.2 ms. None with fewer than 4 hits within 2 ms."""
    times = np.sort(np.asarray(times_s, float))
    if len(times) < 4:
        return None
    steps = np.array([step_s]) if step_s else 60.0 / bpm / STEPS_PER_BEAT * np.linspace(0.99, 1.01, 201)
    found = [_densest_phase(times, step, width=0.001) for step in steps]
    best = int(np.argmax([count for _, count in found]))
    start = float(steps[best]), found[best][0]

    def fit(keep_half: bool, widen: bool = False) -> tuple[float, float, int]:
        """`widen`: from the hits within 4 ms first, refitting at each tolerance while more hits come within
        it (the lattice of a stretch of the song grows to the whole song as the period sharpens)."""
        step, phase = start
        within_2ms, on = 0, 0
        for tolerance in ((0.004,) if widen else ()) + (0.002, 0.001, 0.0005, 0.0002):
            seen = -1
            while True:
                k = np.round((times - phase) / step)
                close = np.abs(times - (phase + k * step)) < tolerance
                on = int(close.sum())
                if on <= seen:
                    break
                seen = on
                within_2ms = within_2ms or (on if tolerance <= 0.002 else 0)
                if on < (max(4, within_2ms // 2) if keep_half else 4):
                    return step, phase, 0  # stopped short of 0.2 ms: not on the lattice
                if step_s:
                    phase = float(np.mean(times[close] - k[close] * step))
                else:
                    (phase, step), *_ = np.linalg.lstsq(
                        np.vstack([np.ones(on), k[close]]).T, times[close], rcond=None
                    )
                if not widen:
                    break
        return step, phase, on

    step, phase, exact = fit(keep_half=False)
    # a long song's lattice can be found on a stretch of it only: its period searched to 1e-4 of itself is
    # 12 ms out after 1000 sixteenths (62 bpm, four minutes). Widened and grown, the fit that puts more
    # hits on the lattice wins
    wide = fit(keep_half=False, widen=True)
    if wide[2] > exact:
        step, phase, exact = wide
    if not exact:
        step, phase, _ = fit(keep_half=True)
    k = np.round((times - phase) / step)
    near = int(np.sum(np.abs(times - (phase + k * step)) < 0.001))
    return (float(step), float(phase), exact, near) if near >= 4 or exact >= 4 else None


def straight_grid(
    times_s: np.ndarray, *, bpm: float, end_s: float, meter: int = 4, step_s: float | None = None
) -> Tempo | None:
    """The lattice of `lattice` as a Tempo (its step given, or fitted); None without 4 hits within 2 ms."""
    fit = lattice(times_s, bpm=bpm, step_s=step_s)
    if fit is None:
        return None
    step, phase, *_ = fit
    beat = STEPS_PER_BEAT * step
    first = phase - np.floor(phase / beat) * beat
    return Tempo.straight(bpm=60.0 / beat, first_beat_s=float(first), meter=meter, end_s=end_s)


def _lattice_beats(merged_s: np.ndarray, weight: np.ndarray, beat_s: float, *, lattice: int) -> np.ndarray:
    """Beat times from hits (`merged_s`, weighted) tracked on a lattice of `lattice` points a beat: the
    beats at the lattice's phase that holds most weight (a kick or a snare counts as four hits; a hat on
    every eighth fills the off-beats as often as the beats)."""
    index, on = _track(merged_s, beat_s / lattice, lattice=lattice)
    phase = int(np.argmax(np.bincount(index[on] % lattice, weights=weight[on], minlength=lattice)))
    first = int(index[on].min()) - ((int(index[on].min()) - phase) % lattice)
    last = int(index[on].max()) + lattice
    return _beats(merged_s, index, on, first=first, last=last, lattice=lattice)


def _off_the_beats(times_s: np.ndarray, beats_s: np.ndarray) -> float:
    """The median distance (s) of hits from their nearest beat."""
    at = np.clip(np.searchsorted(beats_s, times_s), 1, len(beats_s) - 1)
    return float(np.median(np.minimum(np.abs(times_s - beats_s[at - 1]), np.abs(times_s - beats_s[at]))))


def estimate_tempo(
    times_s: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    end_s: float,
    meter: int = 4,
    downbeat_times_s: np.ndarray | None = None,
    backbeat_times_s: np.ndarray | None = None,
    bpm_hint: float | None = None,
) -> Tempo | None:
    """A beat map fitted to drum hits; None with fewer than 8 hits.

    times_s : every hit, seconds. weights : per hit (louder hits count more in the periodicity).
    downbeat_times_s : the kick's hits (beats 1 and 3 in most grooves). backbeat_times_s : the snare's
    hits (beats 2 and 4), which also settle the tempo's octave. bpm_hint : a tempo measured otherwise
    (a one-mic kit's, by librosa): the beat period is the best one within 10 % of it.
    """
    times = np.sort(np.asarray(times_s, float))
    if len(times) < 8:
        return None
    weights = np.ones(len(times)) if weights is None else np.asarray(weights, float)
    beat = _beat_period(times, weights, backbeat_times_s, bpm_hint)
    halved_in_range = 60.0 / (beat / 2) <= MAX_BPM
    if bpm_hint is None and halved_in_range and _backbeat_between_beats(downbeat_times_s, backbeat_times_s, beat):
        beat /= 2  # the snare's backbeat falls on beats
    # hits closer than a 32nd (a kick and a hat together, a flam) are one lattice point, at their mean
    # (the first of them would be early by the spread of human timing)
    group = np.cumsum(np.concatenate(([True], np.diff(times) > beat / 8))) - 1
    merged = np.bincount(group, weights=times) / np.bincount(group)
    anchors = [np.asarray(a, float) for a in (downbeat_times_s, backbeat_times_s) if a is not None and len(a)]
    weight = np.bincount(group).astype(float)  # hits merged into each lattice point
    anchor_times = np.sort(np.concatenate(anchors)) if anchors else np.zeros(0)
    if len(anchor_times):
        at = np.clip(np.searchsorted(anchor_times, merged), 1, len(anchor_times) - 1) if len(anchor_times) > 1 else 0
        nearest = np.minimum(np.abs(merged - anchor_times[at - 1]), np.abs(merged - anchor_times[at]))
        weight = weight + 4.0 * (nearest < beat / 8)  # a kick or a snare counts as four hits
    beats = _lattice_beats(merged, weight, beat, lattice=STEPS_PER_BEAT)
    if len(anchor_times) >= 8:
        # a swung or triplet groove: the beats the twelfths give, where the kick and snare sit on them clearly
        # closer (half the distance or less) than on the sixteenths' beats
        triplet = _lattice_beats(merged, weight, beat, lattice=TRIPLET_LATTICE)
        if _off_the_beats(anchor_times, triplet) <= 0.5 * _off_the_beats(anchor_times, beats):
            beats = triplet
    # extend to the song's start and end with the end periods
    head = int(np.ceil((beats[0] - 0.0) / (beats[1] - beats[0]))) if beats[0] > 0 else 0
    tail = int(np.ceil((end_s - beats[-1]) / (beats[-1] - beats[-2]))) + 1 if end_s > beats[-1] else 1
    beats = np.concatenate(
        (
            beats[0] - (beats[1] - beats[0]) * np.arange(head, 0, -1),
            beats,
            beats[-1] + (beats[-1] - beats[-2]) * np.arange(1, tail + 1),
        )
    )
    kicks = None if downbeat_times_s is None else np.asarray(downbeat_times_s, float)
    snares = None if backbeat_times_s is None else np.asarray(backbeat_times_s, float)
    offset = _downbeat(beats, meter, kicks, snares)
    first_hit_beat = int(np.floor(np.interp(times[0], beats, np.arange(len(beats))) + 0.125))
    downbeat = first_hit_beat + ((offset - first_hit_beat) % meter)
    return Tempo(beat_times_s=tuple(float(b) for b in beats), meter=meter, downbeat=downbeat, end_s=float(end_s))
