"""Per-hit lags between a close mic and the reference mics (overheads, rooms) that hear its drum.

Conventions
- Inside this module positions, lags and shifts are samples (float where fractional). A lag is the time
  from a hit's attack on the close mic to its arrival at the reference: > 0 when the reference hears it
  later. Windows: `close` rows start `pre` samples before each attack; `reference` rows start `min_lag`
  samples (negative) after the matching close row, so window column k + min_lag is lag k.
- A pair is treated as a linear system: the reference hears the close mic's drum through one relative
  transfer function H (the direct sound, the reflections, the two mics' colourations). H is estimated from
  every hit of the song, each frequency bin weighted by how coherent the two mics are there, and a hit's
  `shift` is where its reference window best matches its close window passed through H. The match uses
  the whole waveform in its true proportions, so it does not slip a cycle of the drum's ring between
  velocity layers, does not lock onto a reflection louder than the direct sound, and gives no weight to
  bins where the reference hears other sources (the cymbals in an overhead). Hits are re-aligned and H
  re-estimated a few times, so hits that were moved by an edit sharpen the template instead of blurring it.
- Shifts are relative (one template per pair); `direct_lag` is the absolute lag of a hit at shift 0: where
  the direct sound arrives, the first rise of the aligned hits' envelope at the reference against the
  same on the close mic. So a hit's lag is `direct_lag + shift`.
- `consensus` combines the references of one close mic: an edit moves a close-mic hit by the same
  amount for every reference, while each reference's errors are its own. A hit one reference alone
  places (a ghost note under the cymbals) is confirmed by the other close mics that hear the drum on a
  fixed path (`confirmed_by_neighbours`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.fft as sp_fft
from scipy.signal import sosfiltfilt

from .onsets import Hits, band_sos
from .parallel import map_ordered
from .progress import Progress, quiet
from .roles import KitLayout, Role
from .session import Session, Track, read_windows


@dataclass(frozen=True)
class LagParams:
    """Lag measurement settings."""

    min_lag_ms: float = -30.0  # reference windows start this far before the close-mic attack...
    max_lag_ms: float = 45.0  # ...and reach the farthest plausible room mic
    max_move_ms: float = 30.0  # the farthest an edit moves a hit (about the largest human timing error)...
    # ...of a tight drummer. A loose one's quantised hits move farther (20 ms of jitter: to 43 ms), never
    # beyond half a step of the grid they snap to; hits read near the search's edge are looked for again
    # as far as this (`reached_beyond`; the pipeline caps it at half a sixteenth of the song's tempo)
    widest_move_ms: float = 60.0
    # A hit its pair's template explains less well than this is unmeasured. Real kits: a kick or snare hit
    # 0.6-0.95 (median), bleed picked up as a hit 0.15-0.3; a hi-hat ~0.15, being incoherent between mics.
    min_confidence: float = 0.3


@dataclass(frozen=True)
class LagSetting:
    """How one instrument's hits are compared between mics."""

    band: tuple[float, float]  # Hz: where the drum sounds in both mics
    onset_band: tuple[float, float]  # Hz: where its direct sound rises above the kit's other sources
    post_ms: float  # close-mic window after the attack: the drum's ring that identifies the hit
    # whether the mic's hits are its own drum's: a kick or snare is played throughout and its mic's loudest
    # hits are its strokes; a tom, played in fills, has a mic whose hits are mostly the snare's and kick's
    # bleed, as loud as its own strokes and each source with its own path to the references
    single_source: bool = True


HIT_BATCH = 128  # hits transformed at once: bounds memory on long songs, not the results
PRE_MS = 2.0  # close-mic window before the attack, ms
ONSET_PRE_MS = 10.0  # ...for finding where the drum starts: a sampled kick's soft lead-in starts ms before
# the attack a detector finds, and the floor must be measured before it
# Bands measured on real multi-mic kits: the kick's overhead signal is its low end; the direct sound of
# a snare shows above the hi-hat only below ~3 kHz; a hat or cymbal is incoherent between mics.
LAG_SETTINGS: dict[str, LagSetting] = {
    "kick": LagSetting(band=(40.0, 400.0), onset_band=(100.0, 1000.0), post_ms=80.0),
    "snare": LagSetting(band=(150.0, 8000.0), onset_band=(300.0, 3000.0), post_ms=40.0),
    "tom": LagSetting(band=(60.0, 4000.0), onset_band=(150.0, 2000.0), post_ms=60.0, single_source=False),
    "hihat": LagSetting(band=(3000.0, 16000.0), onset_band=(3000.0, 16000.0), post_ms=35.0),
    "cymbal": LagSetting(band=(2000.0, 16000.0), onset_band=(2000.0, 16000.0), post_ms=35.0),
}
MEASURED_ROLES = ("kick", "snare", "tom")  # close mics whose hits are placed against the references
ITERATIONS = 3  # template estimates: the shifts settle after two (moved hits sharpen the second)
TEMPLATE_HITS = 128  # hits a template is learnt from
# The direct sound "arrives" where the hits' median envelope first rises ONSET_FRACTION of the way to its
# peak, on its rise to the first arrival that reaches STRONG_FRACTION, after its last QUIET_FRACTION value.
# Against render_real.py's direct-path truth (23 untouched renders, 16-mic recordings): Snare Top and
# toms -> overheads 0.17-0.18 ms median |error| (0.54 ms at most); a kick reads 1.1 ms late (2.6 at most:
# at a far mic its direct sound rises slowly under the body's build-up); rooms 0.3-1.3 ms.
ONSET_FRACTION, STRONG_FRACTION, QUIET_FRACTION = 0.2, 0.3, 0.05
QUIET_BEFORE = 0.1  # a hit starts from quiet: its close mic 20 dB below the hit's peak 10-5 ms before the attack
DIRECT_HITS = 64  # hits whose envelopes place the direct sound (every k-th one of a longer song)
DIRECT_SPAN_MS = 15.0  # ...those within this of the template's frame: their windows share lags from -15 ms
COHERENCE_SMOOTH_HZ = 50.0  # bins averaged when weighting by coherence: ~40 hits give a noisy estimate


def band_mask(n_fft: int, sr: int, band: tuple[float, float]) -> np.ndarray:
    """Band-pass weights on rfft bins, with raised-cosine skirts half an octave wide (float32)."""
    f = np.fft.rfftfreq(n_fft, 1 / sr)
    low, high = band[0], min(band[1], 0.45 * sr)
    mask = ((f >= low) & (f <= high)).astype(float)
    for edge, rising in ((low, True), (high, False)):
        width = 0.25 * edge
        ramp = (f > edge - width) & (f < edge + width)
        x = (f[ramp] - (edge - width)) / (2 * width)
        mask[ramp] = 0.5 - 0.5 * np.cos(np.pi * x) if rising else 0.5 + 0.5 * np.cos(np.pi * x)
    return mask.astype(np.float32)


def taper(n: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Flat window with raised-cosine ends: the attack keeps full weight (a Hann window would not)."""
    w = np.ones(n, np.float32)
    fade_in, fade_out = min(fade_in, n // 2), min(fade_out, n // 2)
    w[:fade_in] = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade_in) / max(fade_in, 1))
    w[n - fade_out :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(fade_out) / max(fade_out, 1))
    return w


# --------------------------------------------------------------------------- sub-sample peaks
SINC_HALF_WIDTH = 16  # taps each side for evaluating a band-limited sequence between its samples
FINE_STEPS = np.linspace(-1.0, 1.0, 41)  # 0.05-sample steps around the integer peak


def _sinc_matrix() -> np.ndarray:
    """Rows: Hann-windowed sinc taps that evaluate a band-limited sequence at each FINE_STEPS offset."""
    taps = np.arange(-SINC_HALF_WIDTH, SINC_HALF_WIDTH + 1)
    x = FINE_STEPS[:, None] - taps[None, :]
    window = 0.5 + 0.5 * np.cos(np.pi * np.clip(x / (SINC_HALF_WIDTH + 1), -1, 1))
    return np.sinc(x) * window


_SINC = _sinc_matrix()


def refine_peaks(values: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Fractional positions of the maxima of band-limited rows `values` near integer `peaks`.

    The row is evaluated between its samples by windowed-sinc interpolation (0.05-sample steps), then a
    parabola through the best three points: about a hundredth of a sample on a clean peak.
    """
    rows = np.arange(len(peaks))
    width = values.shape[1]
    taps = np.clip(peaks[:, None] + np.arange(-SINC_HALF_WIDTH, SINC_HALF_WIDTH + 1)[None, :], 0, width - 1)
    fine = values[rows[:, None], taps].astype(np.float64) @ _SINC.T
    j = np.clip(np.argmax(fine, axis=1), 1, len(FINE_STEPS) - 2)
    y0, y1, y2 = fine[rows, j - 1], fine[rows, j], fine[rows, j + 1]
    curvature = y0 - 2 * y1 + y2
    offset = np.divide(0.5 * (y0 - y2), curvature, out=np.zeros(len(peaks)), where=curvature < 0)
    return peaks + FINE_STEPS[j] + offset * (FINE_STEPS[1] - FINE_STEPS[0])


# --------------------------------------------------------------------------------- one pair
@dataclass(frozen=True)
class PairLags:
    """One close mic against one reference, hit by hit.

    shifts : float samples per hit against the pair's template, NaN where the hit could not be measured;
    a hit's lag is `direct_lag + shift`. confidence : how well the template explains the hit's reference
    window, 0..1 (normalised correlation). scores : [shape=(hits, 2 * max_shift + 1)] the match of each
    hit at every integer shift -max_shift..max_shift, kept for `consensus`. template : the pair's learnt
    transfer function on the band's bins of an rfft of `fft_size` (kept to match more hits to it later).
    """

    shifts: np.ndarray
    confidence: np.ndarray
    direct_lag: float
    scores: np.ndarray
    template: np.ndarray | None = None
    fft_size: int = 0

    @property
    def max_shift(self) -> int:
        return (self.scores.shape[1] - 1) // 2

    @property
    def measured(self) -> np.ndarray:
        return ~np.isnan(self.shifts)


def weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    """The value below which half the total weight lies."""
    order = np.argsort(x)
    cumulative = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def pair_fft_size(close: np.ndarray, reference: np.ndarray, max_shift: int) -> int:
    """The FFT length that holds a pair's correlation over every shift without wrapping round."""
    return sp_fft.next_fast_len(reference.shape[1] + close.shape[1] + max_shift, real=True)


def _phasor(angle: np.ndarray) -> np.ndarray:
    """exp(i angle) in single precision (7x faster than np.exp of a complex argument, which works in double)."""
    out = np.empty(angle.shape, np.complex64)
    out.real, out.imag = np.cos(angle), np.sin(angle)
    return out


def band_spectrum(windows: np.ndarray, n_fft: int, lo: int, hi: int) -> np.ndarray:
    """rfft bins [lo, hi) of each row (zero-padded to n_fft), HIT_BATCH rows at a time: only a band's
    bins are kept, and the full spectra of a long song's hits are never held at once."""
    rows = [sp_fft.rfft(windows[k : k + HIT_BATCH], n_fft, axis=1)[:, lo:hi] for k in range(0, len(windows), HIT_BATCH)]
    return np.concatenate(rows) if rows else np.zeros((0, hi - lo), np.complex64)


SEEDS = 3  # loud hits tried as a template's start besides the hits' average


def learn_seeds(c_power: np.ndarray) -> np.ndarray:
    """Rows of the SEEDS learning hits loudest in the close mic's band (the clearest transfer functions)."""
    return np.argsort(-c_power.sum(axis=1), kind="stable")[:SEEDS]


@dataclass(frozen=True)
class _Band:
    """A band on one FFT length: its rfft bins lo..hi-1, the mask's weights there, and Parseval's weight
    of each (the half spectrum's bins other than DC and Nyquist stand for two)."""

    n_fft: int
    lo: int
    hi: int
    mask: np.ndarray
    twice: np.ndarray

    @classmethod
    def of(cls, n_fft: int, sr: int, band: tuple[float, float]) -> _Band:
        mask = band_mask(n_fft, sr, band)
        # only the band's bins carry anything: every spectral product is taken there (a kick's band is 2 %
        # of the spectrum)
        inside = np.flatnonzero(mask > 0)
        lo, hi = int(inside[0]), int(inside[-1]) + 1
        bins = np.arange(lo, hi)
        twice = np.where((bins == 0) | (bins == n_fft // 2), 1.0, 2.0).astype(np.float32)
        return cls(n_fft, lo, hi, mask[lo:hi], twice)


def _products(close: np.ndarray, reference: np.ndarray, band: _Band) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows of close and reference windows: reference x conj(close) in the band, and both band powers."""
    c_spec = band_spectrum(close, band.n_fft, band.lo, band.hi) * band.mask
    r_spec = band_spectrum(np.asarray(reference, np.float32), band.n_fft, band.lo, band.hi) * band.mask
    return r_spec * np.conj(c_spec), np.abs(c_spec) ** 2, np.abs(r_spec) ** 2


def _matched(
    cross: np.ndarray, c_power: np.ndarray, r_power: np.ndarray, template: np.ndarray, band: _Band, columns: np.ndarray
) -> np.ndarray:
    """Normalised match of hits (their `_products`) against `template` at the correlation's `columns`
    (float32)."""
    r_energy = (r_power @ band.twice) / band.n_fft
    spectrum = np.zeros((len(cross), band.n_fft // 2 + 1), np.complex64)
    spectrum[:, band.lo : band.hi] = cross * np.conj(template)[None, :]
    raw = sp_fft.irfft(spectrum, band.n_fft, axis=1)[:, columns]
    norm = np.sqrt((c_power @ (np.abs(template) ** 2 * band.twice)) / band.n_fft * r_energy)
    heard = norm > 0
    np.divide(raw, norm[:, None], out=raw, where=heard[:, None])  # in place: `raw` is a copy already
    raw[~heard] = 0.0
    return raw


def _match(
    close: np.ndarray, reference: np.ndarray, template: np.ndarray, band: _Band, columns: np.ndarray
) -> np.ndarray:
    """`_matched` for rows of windows, a batch of hits at a time (a long song's spectra are never held at
    once)."""
    out = [
        _matched(*_products(close[k : k + HIT_BATCH], reference[k : k + HIT_BATCH], band), template, band, columns)
        for k in range(0, len(close), HIT_BATCH)
    ]
    return np.concatenate(out) if out else np.zeros((0, len(columns)), np.float32)


def _best_shifts(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each hit's best shift (samples, sub-sample, -S..S) in a match at every shift -S..S, and the match
    there (0..1)."""
    peaks = np.argmax(scores, axis=1)
    confidence = np.clip(scores[np.arange(len(scores)), peaks], 0.0, 1.0)
    return refine_peaks(scores, peaks) - (scores.shape[1] - 1) // 2, confidence


def track_pair(
    close: np.ndarray,
    reference: np.ndarray,
    *,
    close_onsets: np.ndarray,
    sr: int,
    setting: LagSetting,
    min_lag: int,
    max_shift: int,
    min_confidence: float,
) -> PairLags:
    """Per-hit shifts of one pair against its relative transfer function, and the template's direct lag.

    close : [shape=(hits, m)] close-mic windows, attack at column PRE_MS, tapered, one hit each.
    reference : [shape=(hits, m + L)] reference windows starting `min_lag` samples after the close ones.
    close_onsets : [shape=(hits, k)] the close mic from ONSET_PRE_MS before each attack, untapered.
    max_shift : samples; the farthest a hit may sit from the template (an edit's largest move).
    """
    n_hits, m = close.shape
    if n_hits == 0:
        empty = np.zeros(0)
        return PairLags(empty, empty, float("nan"), np.zeros((0, 2 * max_shift + 1), np.float32))
    n_fft = pair_fft_size(close, reference, max_shift)
    band = _Band.of(n_fft, sr, setting.band)
    lo, hi = band.lo, band.hi
    omega = (2 * np.pi * np.arange(lo, hi) / n_fft).astype(np.float32)
    smooth = max(1, int(round(COHERENCE_SMOOTH_HZ * n_fft / sr)))
    columns = np.concatenate((np.arange(n_fft - max_shift, n_fft), np.arange(max_shift + 1)))  # shifts -S..S

    # The template is learnt from up to TEMPLATE_HITS hits spread over the song (a long song adds nothing
    # but time; their spectra are kept); every hit is then matched against the last template.
    learn = np.arange(0, n_hits, int(np.ceil(n_hits / TEMPLATE_HITS)))
    learn_cross, learn_c_power, learn_r_power = _products(close[learn], reference[learn], band)

    def match_learning(template: np.ndarray) -> np.ndarray:
        return _matched(learn_cross, learn_c_power, learn_r_power, template, band, columns)

    def averaged(shifts: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The learning hits' transfer function, each moved by its shift, weighted, and kept where the
        hits agree (magnitude-squared coherence across them, less its bias for this many hits, smoothed)."""
        aligned = learn_cross * _phasor(omega[None, :] * shifts[:, None].astype(np.float32))
        numerator = weights @ aligned
        denominator = weights @ learn_c_power + 1e-30
        effective = weights.sum() ** 2 / max(float(weights @ weights), 1e-12)
        coherence = np.abs(numerator) ** 2 / (denominator * (weights @ learn_r_power) + 1e-30)
        coherence = np.clip((coherence - 1 / effective) / max(1 - 1 / effective, 1e-6), 0.0, 1.0)
        coherence = np.convolve(coherence, np.ones(smooth) / smooth, mode="same")
        return numerator / denominator * coherence**2

    def refined(template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ITERATIONS - 1 rounds of aligning the learning hits to the template and averaging them again;
        the last template and the learning hits' match against it."""
        for _ in range(ITERATIONS - 1):
            scores = match_learning(template)
            peaks = np.argmax(scores, axis=1)
            weights = np.clip(scores[np.arange(len(learn)), peaks], 0.0, 1.0) ** 2
            if weights.sum() <= 0:
                break
            shifts = refine_peaks(scores, peaks) - max_shift
            shifts = shifts - weighted_median(shifts, weights)  # the next template sits where most hits are
            template = averaged(shifts, weights)
        return template, match_learning(template)

    def explained(scores: np.ndarray) -> float:
        """The share of learning hits a template explains (best match >= min_confidence)."""
        return float(np.mean(scores.max(axis=1) >= min_confidence))

    def fit(scores: np.ndarray) -> float:
        """How well a template explains the learning hits: the mean of their best matches."""
        return float(np.mean(np.clip(scores.max(axis=1), 0.0, 1.0)))

    # Two starts. The hits as the close mic has them: their average, unless an edit scattered most of
    # them (a 100 % quantise of a loose take) and it is a smear. And one loud hit's own transfer
    # function, which the others are aligned to. The average can also settle on the wrong cycle for some
    # hits: a drum's ringing modes repeat every few ms, and where its velocity layers ring them
    # differently (a loud stroke rings its low mode more) the average of hits that sit on different
    # cycles is a comb, at the frequencies where those cycles agree, that keeps them there (render.py's
    # BJA_Pacific: the loud layer 10.39 ms off the soft one, two periods of its ~193 Hz mode, on every
    # reference at once). Where the mic's hits are one drum's (`single_source`), the start that explains
    # the learning hits best is kept; a mic that hears other drums as loud as its own keeps the average
    # (it follows the sources most of its hits are) unless the average explains fewer than half of them.
    template, scores = refined(averaged(np.zeros(len(learn)), np.ones(len(learn))))
    smeared = explained(scores) < 0.5
    # a mic of several drums whose average is no smear keeps it: its seeds need not be tried
    seeds = learn_seeds(learn_c_power) if setting.single_source or smeared else ()
    for seed in seeds:
        seeded, seeded_scores = refined(learn_cross[seed] / (learn_c_power[seed] + 1e-30))
        if setting.single_source:
            better = fit(seeded_scores) > fit(scores)
        else:
            better = smeared and explained(seeded_scores) > explained(scores)
        if better:
            template, scores = seeded, seeded_scores
    # every hit against the last template (the learning hits' matches are those already made)
    rest = np.setdiff1d(np.arange(n_hits), learn)
    learnt_scores, scores = scores, np.empty((n_hits, len(columns)), np.float32)
    scores[learn], scores[rest] = learnt_scores, _match(close[rest], reference[rest], template, band, columns)
    shifts, confidence = _best_shifts(scores)  # in the last template's frame, as `scores` are
    direct = _direct_lag(close_onsets, reference, shifts, confidence >= min_confidence, sr=sr, setting=setting)
    measured = confidence >= min_confidence
    return PairLags(
        shifts=np.where(measured, shifts, np.nan),
        confidence=confidence,
        direct_lag=direct + min_lag,
        scores=scores.astype(np.float32),
        template=template,
        fft_size=n_fft,
    )


def rematch(
    pair: PairLags,
    close: np.ndarray,
    reference: np.ndarray,
    *,
    sr: int,
    setting: LagSetting,
    early: int,
    max_shift: int,
) -> np.ndarray:
    """The match of hits against a pair's learnt template over a wider reach than it was learnt on.

    close : [shape=(hits, m)] close-mic windows as `track_pair` had them. reference : their reference
    windows, starting `early` samples before `track_pair`'s (and as much longer at the end, or more).
    Returns [shape=(hits, 2 * max_shift + 1)] the match at every integer shift -max_shift..max_shift in
    the pair's frame, so a hit's lag is still `pair.direct_lag + shift`.
    """
    if pair.template is None or not len(close):
        return np.zeros((len(close), 2 * max_shift + 1), np.float32)
    learnt = _Band.of(pair.fft_size, sr, setting.band)
    spectrum = np.zeros(pair.fft_size // 2 + 1, np.complex64)
    spectrum[learnt.lo : learnt.hi] = pair.template
    response = sp_fft.irfft(spectrum, pair.fft_size)  # circular: delays from -(m + S) wrap round to its end
    n_fft = sp_fft.next_fast_len(reference.shape[1] + close.shape[1] + max_shift, real=True)
    negative = close.shape[1] + pair.max_shift
    unwrapped = np.zeros(n_fft, np.float32)
    unwrapped[: pair.fft_size - negative] = response[: pair.fft_size - negative]
    unwrapped[n_fft - negative :] = response[pair.fft_size - negative :]
    band = _Band.of(n_fft, sr, setting.band)
    template = sp_fft.rfft(unwrapped)[band.lo : band.hi].astype(np.complex64)
    columns = (np.arange(-max_shift, max_shift + 1) + early) % n_fft  # the wider windows start `early` sooner
    return _match(close, reference, template, band, columns)


def _direct_lag(
    close_onsets: np.ndarray,
    reference: np.ndarray,
    shifts: np.ndarray,
    use: np.ndarray,
    *,
    sr: int,
    setting: LagSetting,
) -> float:
    """Samples from the close mic's attack to the direct sound at the reference, for a hit at shift 0,
    as a column of the reference window (add `min_lag` for the lag). `close_onsets` start ONSET_PRE_MS
    before the attack, the reference windows PRE_MS before it.

    Each hit's envelope in the onset band, over the lags every hit's window holds (the hits within
    DIRECT_SPAN_MS of the template's frame), normalised to its peak; the median over the hits that start
    from quiet (QUIET_BEFORE; NaN when fewer than three do), so a cymbal or a flam in one hit does not
    move it; the arrival is where the median first rises ONSET_FRACTION of the way from the floor before
    the hit to its peak. The close mic's attack is found the same way, so the filter's own delay cancels.
    """
    if use.sum() < 3:
        use = np.ones(len(shifts), bool)
    near = use & (np.abs(shifts) <= DIRECT_SPAN_MS * 1e-3 * sr)
    if near.sum() >= 3:
        use = near
    if use.sum() > DIRECT_HITS:  # a median over this many hits is settled; more only costs filtering
        use &= np.arange(len(use)) % int(np.ceil(use.sum() / DIRECT_HITS)) == 0
    sos = band_sos(sr, setting.onset_band)
    width = reference.shape[1]
    # undo each hit's shift (whole samples are ample for an envelope), zero where the window ends
    whole = np.round(shifts[use]).astype(np.int64)
    columns = np.arange(width)[None, :] + whole[:, None]
    inside = (columns >= 0) & (columns < width)
    aligned = np.where(inside, np.take_along_axis(reference[use], np.clip(columns, 0, width - 1), axis=1), 0.0)
    # each envelope is read over the lags every hit's window holds: a hit the edit moved brings another
    # stretch of the reference into its window (a crash, another drum's stroke), whose peak would scale it
    first, last = max(0, -int(whole.min())), width - max(0, int(whole.max()))
    reference_env = np.abs(sosfiltfilt(sos, aligned, axis=1))[:, first:last]
    close_env = np.abs(sosfiltfilt(sos, close_onsets[use], axis=1))
    close_env /= close_env.max(axis=1, keepdims=True) + 1e-20
    reference_env /= reference_env.max(axis=1, keepdims=True) + 1e-20
    floor_span = max(1, int(0.005 * sr))
    # only a sound that starts at the close mic has an arrival to place: a hit whose mic was already
    # sounding (a swell in another drum's bleed, a tom ringing on) is read against whatever started it
    quiet = np.median(close_env[:, :floor_span], axis=1) <= QUIET_BEFORE
    if quiet.sum() < 3:
        return float("nan")
    close_env, reference_env = close_env[quiet], reference_env[quiet]
    close_onset = _first_rise(np.median(close_env, axis=0), floor_span=floor_span)
    reference_onset = first + _first_rise(np.median(reference_env, axis=0), floor_span=floor_span)
    return reference_onset - (close_onset - int(ONSET_PRE_MS * 1e-3 * sr) + int(PRE_MS * 1e-3 * sr))


def _first_rise(envelope: np.ndarray, *, floor_span: int) -> float:
    """Fractional index where `envelope` first rises ONSET_FRACTION of the way from its floor (the median
    of its first `floor_span` values) to its peak, on the way to its first strong arrival.

    The first strong arrival is the first value STRONG_FRACTION of the way up after the floor's span (the
    span is the noise before the sound, and the band filter's start-up transient at the window's first
    samples is no arrival); from there back to the last quiet value (QUIET_FRACTION of the way), then
    forward to the threshold. A reflection louder than the direct sound (a room mic) is a later arrival
    and does not move it; a previous hit's tail at the start of the window is left behind by the walk back.
    """
    floor = float(np.median(envelope[:floor_span]))
    rise = float(envelope.max()) - floor
    start = min(floor_span, len(envelope) - 1)
    strong = start + int(np.argmax(envelope[start:] >= floor + STRONG_FRACTION * rise))
    j = strong
    while j > start and envelope[j] > floor + QUIET_FRACTION * rise:
        j -= 1
    threshold = floor + ONSET_FRACTION * rise
    k = j + int(np.argmax(envelope[j:] >= threshold))
    if k == 0:
        return 0.0
    y0, y1 = float(envelope[k - 1]), float(envelope[k])
    return k - 1 + (threshold - y0) / (y1 - y0) if y1 > y0 else float(k)


# -------------------------------------------------------------------------- several references
@dataclass(frozen=True)
class Consensus:
    """The shifts of one close mic's hits agreed by its references.

    references : the reference mics, in the order of the other fields' rows. shift : float samples per
    hit in the frame of the most confident reference, NaN where no reference measured it. offsets : per
    reference, its frame minus that one's. pair_shifts : [shape=(refs, hits)] each
    reference's own shift of the hit, re-read on the lobe the references agree on (NaN where it did not
    measure it). agreeing : per hit, how many references measured it. noise : samples, the robust spread
    of the references' disagreement (the precision of one measurement).
    """

    references: tuple[str, ...]
    shift: np.ndarray
    offsets: np.ndarray
    pair_shifts: np.ndarray
    agreeing: np.ndarray
    confidence: np.ndarray
    noise: float


def _column_weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per column, the value below which half the column's weight lies; NaN for a column without weight."""
    order = np.argsort(np.where(np.isnan(values), np.inf, values), axis=0)
    ordered = np.take_along_axis(values, order, axis=0)
    cumulative = np.cumsum(np.take_along_axis(weights, order, axis=0), axis=0)
    total = cumulative[-1]
    row = np.argmax(cumulative >= 0.5 * total[None, :], axis=0)
    out = ordered[row, np.arange(values.shape[1])]
    return np.where(total > 0, out, np.nan)


CLUSTER_SHARE = 1 / 3  # of the hits: a cluster of differences (a reference split between two arrivals
# reads each on about half its hits)


def _frame_offset(differences: np.ndarray, lobe: int) -> float:
    """The offset (samples) between two references' frames, from their per-hit shift differences.

    An edit moves a hit by the same amount in every reference, so the difference is one value, except
    where one reference read a hit on another lobe (a room whose reflection matches as well as its
    direct sound). The median holds while it lies in a cluster (a third of the differences within
    `lobe` of it). When the readings split into clusters it can fall between them, in none, and the
    offset is then the median of the densest cluster; where no cluster holds a third of them (one
    reference's readings scattered hit by hit, a kick in a real overhead), the median stays."""
    d = np.sort(differences)
    median = float(np.median(d))
    count = np.searchsorted(d, d + lobe, side="right") - np.searchsorted(d, d - lobe, side="left")
    if np.sum(np.abs(d - median) <= lobe) >= CLUSTER_SHARE * len(d) or count.max() < CLUSTER_SHARE * len(d):
        return median
    centre = d[int(np.argmax(count))]
    return float(np.median(d[np.abs(d - centre) <= lobe]))


def consensus(
    by_reference: dict[str, PairLags], *, min_confidence: float, lobe: int, offsets: np.ndarray | None = None
) -> Consensus:
    """Combine the references of one close mic hit by hit.

    The references' frames are tied to the most confident one's by the densest cluster of differences of
    their shifts (`_frame_offset`); each reference's match curve, weighted by its confidence, is moved
    into that frame and the curves are summed (the shift where they agree wins; a cycle slip or a
    reflection in one reference does not). Then each reference's own shift is re-read on its peak within
    `lobe` samples (a quarter period of the drum's band) of that agreement, and the hit's shift is their
    confidence-weighted median.
    """
    references = tuple(by_reference)
    pairs = [by_reference[r] for r in references]
    n_refs, n_hits = len(pairs), len(pairs[0].shifts)
    if offsets is None:  # (given where a few hits are read again in frames the song's hits tied)
        lead = int(np.argmax([np.median(p.confidence) for p in pairs]))
        offsets = np.zeros(n_refs)
        for r, p in enumerate(pairs):
            both = pairs[lead].measured & p.measured
            if r != lead and both.sum() >= 3:
                offsets[r] = _frame_offset(p.shifts[both] - pairs[lead].shifts[both], lobe)
    s = pairs[0].max_shift
    total = np.zeros((n_hits, 2 * s + 1))
    for p, offset in zip(pairs, offsets, strict=True):
        k = int(round(offset))
        moved = np.roll(p.scores, -k, axis=1)  # column j now holds the match at shift j - s + offset
        if k > 0:
            moved[:, -k:] = 0.0
        elif k < 0:
            moved[:, :-k] = 0.0
        weight = np.where(p.confidence >= min_confidence, p.confidence, 0.0)[:, None]
        total += np.clip(moved, 0.0, None) * weight
    agreed = np.argmax(total, axis=1) - s  # integer shift in the lead frame
    pair_shifts = np.full((n_refs, n_hits), np.nan)
    rows = np.arange(n_hits)
    for r, (p, offset) in enumerate(zip(pairs, offsets, strict=True)):
        centre = np.clip(agreed + int(round(offset)) + s, lobe, 2 * s - lobe)
        near = p.scores[rows[:, None], centre[:, None] + np.arange(-lobe, lobe + 1)[None, :]]
        local = np.argmax(near, axis=1)
        interior = (local > 0) & (local < 2 * lobe)  # a true peak, not the edge of the search
        good = interior & (near[rows, local] >= min_confidence)
        pair_shifts[r] = np.where(good, refine_peaks(p.scores, centre + local - lobe) - s, np.nan)
    in_lead = pair_shifts - offsets[:, None]
    agreeing = np.sum(~np.isnan(in_lead), axis=0)
    weights = np.where(np.isnan(in_lead), 0.0, np.stack([p.confidence for p in pairs]))
    shift = _column_weighted_median(in_lead, weights)
    residual = in_lead - shift[None, :]
    multi = (agreeing >= 2)[None, :] & ~np.isnan(residual)
    noise = float(1.4826 * np.median(np.abs(residual[multi]))) if multi.sum() >= 6 else float("nan")
    return Consensus(
        references=references,
        shift=shift,
        offsets=offsets,
        pair_shifts=pair_shifts,
        agreeing=agreeing,
        confidence=np.max([p.confidence for p in pairs], axis=0),
        noise=noise,
    )


# A hit the search places within this share of its reach from the edge, or cannot place, may have been
# moved beyond it: its match there is a side lobe of the true one (render_real.py with 20 ms of jitter:
# hits moved 33-37 ms read at 26-29 ms), or it has no peak at all
NEAR_EDGE_SHARE = 1 / 3


def _near_the_edge(agreed: Consensus, max_shift: int, *, min_confidence: float) -> np.ndarray:
    """Hits some reference matches (at its best shift, maybe the search's edge) whose agreed shift is
    unplaced or within NEAR_EDGE_SHARE of the search's reach (`max_shift`, samples) from its edge."""
    heard = agreed.confidence >= min_confidence
    far = np.nan_to_num(np.abs(agreed.shift), nan=np.inf) >= (1 - NEAR_EDGE_SHARE) * max_shift
    return heard & far


def _pair_from_scores(scores: np.ndarray, direct_lag: float, *, min_confidence: float) -> PairLags:
    """A pair's readings from its match at every shift -S..S (`rematch`)."""
    shifts, confidence = _best_shifts(scores)
    return PairLags(np.where(confidence >= min_confidence, shifts, np.nan), confidence, direct_lag, scores)


# A hit read beyond the search's reach is an ordinary hit moved farther: it matches its template as well as
# the mic's other hits do, not worse than this quantile of their best matches (a kick whose low band
# matches every ~15 ms matched 0.39-0.50 there on render.py, where its placed hits match 0.6-0.95)
FAR_MATCH_QUANTILE = 0.1


def reached_beyond(
    agreed: Consensus, wider: dict[str, PairLags], rows: np.ndarray, *, max_shift: int, lobe: int, min_confidence: float
) -> Consensus:
    """The consensus with the hits `rows` read again over a wider reach (`wider`: per reference, those
    hits' readings in the pair's frame), kept where the wider search places a hit where the narrower one
    could not: beyond its reach (less the lobe its peaks need inside it), two references or more agreeing
    there on a true peak, no reference matching the hit best anywhere else, and the match as good as
    the mic's hits typically get (FAR_MATCH_QUANTILE). A reading that is only the least bad of a row of
    similar peaks (a kick's low band, or one that follows the search's edge as it widens) is no hit's."""
    references = agreed.references
    again = consensus(
        {r: wider[r] for r in references}, min_confidence=min_confidence, lobe=lobe, offsets=agreed.offsets
    )
    outside = np.nan_to_num(np.abs(again.shift), nan=0.0) > max_shift - 2 * lobe
    best = np.stack([wider[r].shifts for r in references]) - agreed.offsets[:, None]  # each one's own best, lead frame
    elsewhere = np.any(np.abs(best - again.shift[None, :]) > lobe, axis=0, where=~np.isnan(best))
    placed = ~np.isnan(agreed.shift)
    typical = float(np.quantile(agreed.confidence[placed], FAR_MATCH_QUANTILE)) if placed.any() else 1.0
    keep = outside & (again.agreeing >= 2) & ~elsewhere & (again.confidence >= typical)
    if not keep.any():
        return agreed
    shift, pair_shifts, agreeing = agreed.shift.copy(), agreed.pair_shifts.copy(), agreed.agreeing.copy()
    confidence = agreed.confidence.copy()
    at = rows[keep]
    shift[at], pair_shifts[:, at], agreeing[at] = again.shift[keep], again.pair_shifts[:, keep], again.agreeing[keep]
    confidence[at] = again.confidence[keep]
    return replace(agreed, shift=shift, pair_shifts=pair_shifts, agreeing=agreeing, confidence=confidence)


NEIGHBOUR_CALIBRATION_HITS = 64  # well-placed hits a neighbouring close mic's path is measured on
NEIGHBOUR_MIN_HITS = 8  # ...at least
NEIGHBOUR_SPREAD = 0.25  # of a lobe: the most a neighbour's path may vary over the well-placed hits
# A neighbour's reading of a quiet hit is never used alone, only where another mic reads the same shift
# within a lobe (a wrong peak does so by chance about lobe / max_shift of the time, ~1 %): its own match
# may be weak (a snare ghost note in a rack tom's mic matches at 0.15-0.35 where its strokes match at 0.85)
NEIGHBOUR_MIN_CONFIDENCE = 0.1


def _weakly_placed(agreed: Consensus) -> np.ndarray:
    """Hits one reference alone places (a ghost note under the cymbals, heard only by a room)."""
    return agreed.agreeing == 1


def _calibration_hits(agreed: Consensus, weak: np.ndarray) -> np.ndarray:
    """Up to NEIGHBOUR_CALIBRATION_HITS well-placed hits spread over the song: two or more references
    agree on them and they are explained at least as well as the mic's typical hit."""
    placed = ~weak & ~np.isnan(agreed.shift)
    if not placed.any():
        return placed
    well = np.flatnonzero(placed & (agreed.confidence >= np.median(agreed.confidence[placed])))
    keep = well[:: int(np.ceil(len(well) / NEIGHBOUR_CALIBRATION_HITS))]  # (never empty: the median hit is in it)
    out = np.zeros(len(weak), bool)
    out[keep] = True
    return out


def confirmed_by_neighbours(
    agreed: Consensus, heard: dict[str, PairLags], rows: np.ndarray, *, weak: np.ndarray, lobe: int
) -> Consensus:
    """Hits the references place weakly, placed again with the other close mics that hear this drum.

    A close mic beside the drum (a rack tom's over a snare) hears it on one fixed path and little of the
    cymbals that mask a quiet hit in the overheads. Where its shift differs from the references' agreed
    shift by one constant over the well-placed hits (its path is fixed and it was not edited apart from
    them), its reading counts as one more measurement of the weak hits (`rows`: indices of the hits
    `heard` measured; `weak`: which of them are weak). A weak hit is placed where two readings, references
    and neighbours together, agree within `lobe` samples, one of them a reference's: a neighbour confirms
    a reference's reading, never places a hit alone (two tom mics agree on a tom stroke bleeding into
    the snare mic, which is no snare hit). Otherwise the hit keeps its references' reading."""
    readings = [agreed.pair_shifts[:, rows] - agreed.offsets[:, None]]
    for p in heard.values():
        calibrated = ~weak & ~np.isnan(agreed.shift[rows]) & p.measured
        if calibrated.sum() < NEIGHBOUR_MIN_HITS:
            continue
        difference = p.shifts[calibrated] - agreed.shift[rows][calibrated]
        offset = float(np.median(difference))
        spread = 1.4826 * float(np.median(np.abs(difference - offset)))
        if spread > NEIGHBOUR_SPREAD * lobe:
            continue  # edited apart from the references, or hearing this drum on no fixed path
        readings.append((p.shifts - offset)[None, :])
    if len(readings) == 1:
        return agreed
    values = np.concatenate(readings)
    n_refs = len(agreed.references)
    shift, agreeing = agreed.shift.copy(), agreed.agreeing.copy()
    for k, i in enumerate(rows):
        own, theirs = values[:n_refs, k], values[n_refs:, k]
        if not weak[k] or np.all(np.isnan(own)) or np.all(np.isnan(theirs)):
            continue
        # around each reference's reading, the readings within a lobe of it
        near = np.abs(own[:, None] - values[None, :, k]) <= lobe
        best = int(np.argmax(near.sum(axis=1)))
        if near[best].sum() >= 2 and near[best, n_refs:].any():
            shift[i], agreeing[i] = float(np.median(values[near[best], k])), int(near[best].sum())
    return replace(agreed, shift=shift, agreeing=agreeing)


# ------------------------------------------------------------------------------------ the kit
def _until_next_hit(windows: np.ndarray, positions: np.ndarray, pre: int, *, guard: int) -> np.ndarray:
    """Close-mic windows with everything from just before the next hit on silenced: a window must hold
    one hit only, or a flam (a second attack ms later, moved differently) would blur its match."""
    out = windows.copy()
    gaps = np.diff(positions, append=np.iinfo(np.int64).max // 2)
    for i, gap in enumerate(gaps):
        stop = pre + int(gap) - guard
        if stop < out.shape[1]:
            out[i, max(stop, pre + guard) :] = 0.0
    return out


@dataclass(frozen=True)
class _ReferenceTask:
    """One reference mic and the close mics paired with it: what `_reference_pairs` needs, in one picklable
    value (a worker process measures it)."""

    reference: Track
    closes: tuple[str, ...]
    starts: tuple[np.ndarray, ...]  # per close mic, its reference windows' starts (samples, timeline)
    lengths: tuple[int, ...]  # per close mic, its reference windows' length (samples)
    close_windows: tuple[np.ndarray, ...]
    close_onsets: tuple[np.ndarray, ...]
    settings: tuple[LagSetting, ...]
    sr: int
    min_lag: int
    max_shift: int
    min_confidence: float


def _reference_pairs(task: _ReferenceTask) -> list[PairLags]:
    """`track_pair` of every close mic paired with one reference, in `task.closes` order; the reference is
    read once, around all their hits."""
    together = read_windows(task.reference, np.concatenate(task.starts), max(task.lengths))
    bounds = np.cumsum([0] + [len(x) for x in task.starts])
    return [
        track_pair(
            task.close_windows[k],
            together[lo:hi, :n],
            close_onsets=task.close_onsets[k],
            sr=task.sr,
            setting=task.settings[k],
            min_lag=task.min_lag,
            max_shift=task.max_shift,
            min_confidence=task.min_confidence,
        )
        for k, (lo, hi, n) in enumerate(zip(bounds[:-1], bounds[1:], task.lengths, strict=True))
    ]


def measure_kit(
    session: Session,
    *,
    layout: KitLayout,
    roles: dict[str, Role],
    hits: dict[str, Hits],
    params: LagParams,
    progress: Progress = quiet,
    jobs: int = 1,
) -> tuple[dict[tuple[str, str], PairLags], dict[str, Consensus]]:
    """Per pair, every hit's shift against the pair's template; per close mic, its references' consensus.

    Close mics are read only around their hits; each reference once, around the hits of every close mic
    it is paired with, its pairs measured and let go (memory holds one reference's windows per job).
    `jobs` references are measured at once (the same results for any value).
    """
    sr = session.sr or 0
    pre, onset_pre = int(PRE_MS * 1e-3 * sr), int(ONSET_PRE_MS * 1e-3 * sr)
    min_lag, max_lag = int(params.min_lag_ms * 1e-3 * sr), int(params.max_lag_ms * 1e-3 * sr)
    max_shift = int(params.max_move_ms * 1e-3 * sr)
    # a hi-hat or cymbal radiates differently towards every mic: on real kits the two hear ~0.1-0.2 of
    # each other's signal, so their hits cannot be placed (they are still moved with the kit by align)
    with_pairs = {p.close for p in layout.pairs}
    closes = [c for c in layout.close if c in with_pairs and c in hits and len(hits[c]) and roles[c] in MEASURED_ROLES]
    settings = {c: LAG_SETTINGS.get(roles[c], LAG_SETTINGS["snare"]) for c in closes}
    posts = {c: int(settings[c].post_ms * 1e-3 * sr) for c in closes}
    close_windows, close_onsets = {}, {}
    for c in closes:
        close_onsets[c] = read_windows(session.track(c), hits[c].positions - onset_pre, onset_pre + posts[c])
        shaped = close_onsets[c][:, onset_pre - pre :] * taper(pre + posts[c], int(0.001 * sr), int(0.01 * sr))
        close_windows[c] = _until_next_hit(shaped, hits[c].positions, pre, guard=int(0.0005 * sr))
    agreed: dict[str, Consensus] = {}
    pairs = [p for p in layout.pairs if p.close in close_windows]
    references = sorted({p.reference for p in pairs})
    tasks = []
    for reference in references:
        paired = [p.close for p in pairs if p.reference == reference]
        tasks.append(
            _ReferenceTask(
                reference=session.track(reference),
                closes=tuple(paired),
                starts=tuple(hits[c].positions - pre + min_lag for c in paired),
                lengths=tuple(pre + posts[c] + max_lag - min_lag for c in paired),
                close_windows=tuple(close_windows[c] for c in paired),
                close_onsets=tuple(close_onsets[c] for c in paired),
                settings=tuple(settings[c] for c in paired),
                sr=sr,
                min_lag=min_lag,
                max_shift=max_shift,
                min_confidence=params.min_confidence,
            )
        )
    lags: dict[tuple[str, str], PairLags] = {}
    for task, measured in zip(
        tasks,
        map_ordered(_reference_pairs, tasks, jobs=jobs, progress=progress, stage="Measuring per-hit lags"),
        strict=True,
    ):
        lags.update({(close, task.reference.name): pair for close, pair in zip(task.closes, measured, strict=True)})
    for c in closes:
        own = {p.reference: lags[(p.close, p.reference)] for p in pairs if p.close == c}
        if own:
            low, high = settings[c].band
            lobe = max(1, int(sr / (4 * np.sqrt(low * high))))  # a quarter period at the band's centre
            agreed[c] = consensus(own, min_confidence=params.min_confidence, lobe=lobe)
            # a hit read near the search's edge may have been moved beyond it: it is read again farther out
            widest = int(params.widest_move_ms * 1e-3 * sr)
            near_edge = _near_the_edge(agreed[c], max_shift, min_confidence=params.min_confidence)
            if widest > max_shift and near_edge.any():
                rows = np.flatnonzero(near_edge)
                extra = widest - max_shift
                span = pre + posts[c] + max_lag - min_lag + 2 * extra
                wider = {}
                for reference, pair in own.items():
                    windows = read_windows(
                        session.track(reference), hits[c].positions[rows] - pre + min_lag - extra, span
                    )
                    scores = rematch(
                        pair, close_windows[c][rows], windows, sr=sr, setting=settings[c], early=extra, max_shift=widest
                    )
                    wider[reference] = _pair_from_scores(scores, pair.direct_lag, min_confidence=params.min_confidence)
                agreed[c] = reached_beyond(
                    agreed[c], wider, rows, max_shift=max_shift, lobe=lobe, min_confidence=params.min_confidence
                )
            weak = _weakly_placed(agreed[c])
            others = set(layout.siblings_of(c)) | {c}
            neighbours = [name for name in layout.close if roles[name] in MEASURED_ROLES and name not in others]
            calibration = _calibration_hits(agreed[c], weak)
            if weak.any() and neighbours and calibration.sum() >= NEIGHBOUR_MIN_HITS:
                # each neighbour read around this mic's weak hits and the well-placed ones that calibrate it
                rows = np.flatnonzero(weak | calibration)
                span = pre + posts[c] + max_lag - min_lag
                heard: dict[str, PairLags] = {}
                for neighbour in neighbours:
                    windows = read_windows(session.track(neighbour), hits[c].positions[rows] - pre + min_lag, span)
                    heard[neighbour] = track_pair(
                        close_windows[c][rows],
                        windows,
                        close_onsets=close_onsets[c][rows],
                        sr=sr,
                        setting=replace(settings[c], band=settings[c].onset_band),
                        min_lag=min_lag,
                        max_shift=max_shift,
                        min_confidence=NEIGHBOUR_MIN_CONFIDENCE,
                    )
                agreed[c] = confirmed_by_neighbours(agreed[c], heard, rows, weak=weak[rows], lobe=lobe)
    return lags, agreed
