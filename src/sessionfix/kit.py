"""Kit coherence: per hit, how late each reference mic hears a close mic's drum, and what that means.

Conventions
- Hit positions are samples on the session timeline; lags and moves are milliseconds (float), lag > 0
  when the reference hears the hit after the close mic. `move_ms = -(lag_ms - natural_lag_ms)`:
  positive when the close-mic hit sits later than the reference says it was played.
- Lags come from a band-limited, PHAT-weighted cross-correlation of a short window of the close mic
  around each hit against the reference, searched only over a physically plausible range of lags and
  refined to a fraction of a sample on the band-limited correlation itself. Reference mics are read
  only around the hits.
- A pair's natural lag is the lag its unmoved hits share. When every hit has been moved (a 100%
  quantise) nothing in the audio fixes it; the hits are then assumed to have been played centred on
  the beat (`natural_lag_basis = "centred"`), which can be off by the drummer's average push or drag.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import scipy.fft as sp_fft

from .findings import Finding
from .grid import Tempo, estimate_tempo
from .onsets import Hits, OnsetParams, attribute_bleed, detect_hits
from .progress import Progress, quiet
from .roles import KitLayout, Role, _drum_key
from .session import Session, read, read_windows

PairState = Literal["coherent", "constant_offset", "partially_quantised"]
NaturalBasis = Literal["unmoved_hits", "centred", "none"]


@dataclass(frozen=True)
class LagSetting:
    """How one instrument's hit is compared between mics."""

    band: tuple[float, float]  # Hz: where the drum is loud in both mics
    pre_ms: float  # close-mic window before the attack
    post_ms: float  # ...and after it
    phat: float  # 1 = fully whitened cross-spectrum (sharp peak), 0 = plain correlation


# Measured on rendered kits (natural scenario: spread of the lag over hits, and median against the
# direct-path truth): the snare whitened over a wide band gives 0.003 ms spread; the kick's overhead
# signal is mostly low end, so it gets 40-400 Hz, a window long enough for two cycles of it, and
# partial whitening (0.07 ms spread, 0.04 ms from truth; full whitening: 0.2 ms; none: locks a cycle off).
LAG_SETTINGS: dict[str, LagSetting] = {
    "kick": LagSetting(band=(40.0, 400.0), pre_ms=10.0, post_ms=80.0, phat=0.7),
    "snare": LagSetting(band=(150.0, 8000.0), pre_ms=5.0, post_ms=35.0, phat=1.0),
    "tom": LagSetting(band=(60.0, 4000.0), pre_ms=5.0, post_ms=60.0, phat=0.85),
    "hihat": LagSetting(band=(3000.0, 16000.0), pre_ms=5.0, post_ms=35.0, phat=1.0),
    "cymbal": LagSetting(band=(2000.0, 16000.0), pre_ms=5.0, post_ms=35.0, phat=1.0),
}
# Farthest a reference of each role can plausibly be from the kit, as a lag in ms; more is a routing
# or latency fault (constant_offset). 8 ms is 2.7 m of air: an overhead higher than any ceiling allows.
MAX_PLAUSIBLE_LAG_MS: dict[str, float] = {"overhead": 8.0, "room": 30.0}
# The lag of a typical placement, used to size a mic delay: an overhead ~1 m above the kit (2.9 ms)
# minus a close mic's few cm; a room pair ~3.5 m away.
NOMINAL_LAG_MS: dict[str, float] = {"overhead": 3.0, "room": 10.0}
ON_GRID_S = 0.0005  # a quantised hit sits this close to its grid (attacks of one drum differ by ~0.3 ms)


@dataclass(frozen=True)
class KitParams:
    """Kit analysis settings."""

    min_lag_ms: float = -30.0  # search range: a close-mic hit moved up to 30 ms later than played
    max_lag_ms: float = 45.0  # ...or the farthest plausible room mic, moved earlier
    min_correlation: float = 0.3  # a hit whose band-limited correlation is weaker is "unmeasured"
    unmoved_ms: float = 0.05  # lags within this of the natural lag count as one lag (a 48 kHz sample is 0.021)
    coherent_share: float = 0.8  # share of hits on one lag for a pair to be coherent
    min_hits: int = 8  # fewer measured hits cannot show a pattern
    min_spread_ms: float = 0.5  # a partially quantised pair's lags spread at least this much
    max_disagreement_ms: float = 0.5  # references of an edited mic agree on its moves to within this (spread)...
    max_disagreement_share: float = 0.1  # ...and to within this share of how far the lags wander
    onsets: OnsetParams = field(default_factory=OnsetParams)


@dataclass(frozen=True)
class PairAnalysis:
    """One close mic against one reference mic, hit by hit."""

    close: str
    reference: str
    instrument: Role
    positions: np.ndarray  # int64, samples: the close mic's hits
    lags_ms: np.ndarray  # float, NaN where unmeasured
    signs: np.ndarray  # +1/-1 polarity of the reference against the close mic per hit, 0 unmeasured
    natural_lag_ms: float | None
    natural_lag_basis: NaturalBasis
    spread_ms: float | None  # robust standard deviation of the lags (1.4826 x MAD)
    state: PairState

    @property
    def moves_ms(self) -> np.ndarray:
        if self.natural_lag_ms is None:
            return np.full(len(self.lags_ms), np.nan)
        return -(self.lags_ms - self.natural_lag_ms)

    @property
    def measured(self) -> np.ndarray:
        return ~np.isnan(self.lags_ms)


@dataclass(frozen=True)
class KitAnalysis:
    hits: dict[str, Hits]  # per close mic, own-drum hits
    pairs: tuple[PairAnalysis, ...]
    edited: tuple[str, ...]  # tracks judged to have been moved hit by hit
    moved_hits: int  # distinct hits moved on the edited side (one per hit of the group)
    tempo: Tempo | None
    findings: tuple[Finding, ...]


# ------------------------------------------------------------------------------------------- lags
def _band_mask(n_fft: int, sr: int, band: tuple[float, float]) -> np.ndarray:
    """Smooth (raised-cosine edged) band-pass weights on rfft bins."""
    f = np.fft.rfftfreq(n_fft, 1 / sr)
    low, high = band[0], min(band[1], 0.45 * sr)
    mask = ((f >= low) & (f <= high)).astype(float)
    for edge, rising in ((low, True), (high, False)):
        width = 0.25 * edge
        ramp = (f > edge - width) & (f < edge + width)
        x = (f[ramp] - (edge - width)) / (2 * width)
        mask[ramp] = 0.5 - 0.5 * np.cos(np.pi * x) if rising else 0.5 + 0.5 * np.cos(np.pi * x)
    return mask


def _taper(n: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Flat window with raised-cosine ends: the attack keeps full weight (a Hann window would not)."""
    w = np.ones(n)
    w[:fade_in] = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade_in) / fade_in)
    w[n - fade_out :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(fade_out) / fade_out)
    return w


SINC_HALF_WIDTH = 16  # taps each side for interpolating a band-limited correlation between samples
FINE_STEPS = np.linspace(-1.0, 1.0, 41)  # 0.05-sample steps around the integer peak


def _sinc_matrix() -> np.ndarray:
    """Rows: Hann-windowed sinc taps that evaluate a band-limited sequence at each FINE_STEPS offset."""
    taps = np.arange(-SINC_HALF_WIDTH, SINC_HALF_WIDTH + 1)
    x = FINE_STEPS[:, None] - taps[None, :]
    window = 0.5 + 0.5 * np.cos(np.pi * np.clip(x / (SINC_HALF_WIDTH + 1), -1, 1))
    return np.sinc(x) * window


_SINC = _sinc_matrix()
LAG_CHUNK = 128  # hits per FFT batch: bounds memory whatever the song's length


def measure_lags(
    close: np.ndarray,
    reference: np.ndarray,
    *,
    sr: int,
    band: tuple[float, float],
    min_lag: int,
    min_correlation: float,
    phat: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per hit, the lag (samples, fractional; NaN when unmeasured) and polarity sign of the reference.

    close : [shape=(hits, m)] close-mic windows; reference : [shape=(hits, m + L)] reference windows
    starting `min_lag` samples (negative) relative to the close windows, so lag k + min_lag is
    searched for k in 0..L.
    """
    parts = [
        _measure_chunk(
            close[i : i + LAG_CHUNK],
            reference[i : i + LAG_CHUNK],
            sr=sr,
            band=band,
            min_lag=min_lag,
            min_correlation=min_correlation,
            phat=phat,
        )
        for i in range(0, len(close), LAG_CHUNK)
    ]
    if not parts:
        return np.zeros(0), np.zeros(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _measure_chunk(
    close: np.ndarray,
    reference: np.ndarray,
    *,
    sr: int,
    band: tuple[float, float],
    min_lag: int,
    min_correlation: float,
    phat: float,
) -> tuple[np.ndarray, np.ndarray]:
    n_hits, m = close.shape
    span = reference.shape[1] - m  # number of lags searched, minus one
    n_fft = sp_fft.next_fast_len(reference.shape[1] + m, real=True)
    mask = _band_mask(n_fft, sr, band).astype(np.float32)
    taper = _taper(m, int(0.003 * sr), int(0.012 * sr)).astype(np.float32)
    # single precision is ample for locating a peak to a hundredth of a sample, and twice as fast
    c_spec = sp_fft.rfft(close.astype(np.float32) * taper, n_fft, axis=1)
    r_spec = sp_fft.rfft(reference.astype(np.float32), n_fft, axis=1)
    cross = r_spec * np.conj(c_spec) * mask
    # PHAT weighting (phat=1) whitens the cross-spectrum for a sharp peak; phat<1 keeps some of the
    # spectrum's shape, for drums whose energy sits in a few bins
    magnitude = np.abs(cross) + np.float32(1e-12) * np.abs(cross).max(axis=1, keepdims=True) + np.float32(1e-30)
    corr = sp_fft.irfft(cross / (magnitude if phat == 1.0 else magnitude ** np.float32(phat)), n_fft, axis=1)
    peaks = np.argmax(np.abs(corr[:, : span + 1]), axis=1)
    rows = np.arange(n_hits)
    # normalised band-limited correlation at the peak: its sign is the polarity, its size the confidence
    c_band = sp_fft.irfft(c_spec * mask, n_fft, axis=1)[:, :m]
    r_band = sp_fft.irfft(r_spec * mask, n_fft, axis=1)
    segments = r_band[rows[:, None], peaks[:, None] + np.arange(m)[None, :]]
    plain = np.einsum("ij,ij->i", c_band, segments)
    denominator = np.sqrt(np.einsum("ij,ij->i", c_band, c_band) * np.einsum("ij,ij->i", segments, segments))
    rho = np.divide(plain, denominator, out=np.zeros(n_hits), where=denominator > 0)
    good = np.abs(rho) >= min_correlation
    # the band-limited correlation between samples: windowed-sinc interpolation around each peak
    taps = (peaks[:, None] + np.arange(-SINC_HALF_WIDTH, SINC_HALF_WIDTH + 1)[None, :]) % n_fft
    values = (corr[rows[:, None], taps].astype(np.float64) @ _SINC.T) * np.sign(rho)[:, None]
    j = np.clip(np.argmax(values, axis=1), 1, len(FINE_STEPS) - 2)
    y0, y1, y2 = values[rows, j - 1], values[rows, j], values[rows, j + 1]
    curvature = y0 - 2 * y1 + y2
    offset = np.divide(0.5 * (y0 - y2), curvature, out=np.zeros(n_hits), where=curvature < 0)
    step = FINE_STEPS[1] - FINE_STEPS[0]
    lags = np.where(good, peaks + FINE_STEPS[j] + offset * step + min_lag, np.nan)
    return lags, np.where(good, np.sign(rho), 0.0)


# ------------------------------------------------------------------------------------ pair states
def _natural_lag(lags_ms: np.ndarray, params: KitParams) -> tuple[float | None, NaturalBasis, float]:
    """The lag the pair's unmoved hits share, its basis, and the share of hits on it."""
    measured = lags_ms[~np.isnan(lags_ms)]
    if not len(measured):
        return None, "none", 0.0
    ordered = np.sort(measured)
    width = 2 * params.unmoved_ms
    ends = np.searchsorted(ordered, ordered + width, side="right")
    counts = ends - np.arange(len(ordered))
    best = int(np.argmax(counts))
    share = counts[best] / len(ordered)
    cluster = ordered[best : ends[best]]
    if counts[best] >= 3 and share >= 0.25:
        return float(np.median(cluster)), "unmoved_hits", float(share)
    return float(np.median(measured)), "centred", float(share)


def _robust_spread(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else 0.0


def _pair_state(
    lags_ms: np.ndarray, share: float, spread: float, role: str, natural: float | None, params: KitParams
) -> PairState:
    n = int(np.sum(~np.isnan(lags_ms)))
    if n < params.min_hits or natural is None:
        return "coherent"
    if share >= params.coherent_share or spread < params.min_spread_ms:
        return "constant_offset" if natural > MAX_PLAUSIBLE_LAG_MS.get(role, 30.0) else "coherent"
    return "partially_quantised"


def _consistent_moves(pairs: list[PairAnalysis], params: KitParams) -> bool:
    """Do the references agree hit by hit on how far the close mic moved?

    An edited close mic moves each hit by the same amount for every reference, so the difference of
    two references' lags stays put while each lag wanders; bleed or a second source does not do that.
    """
    if len(pairs) < 2:
        return True  # one reference cannot disagree with itself
    reliable = [p for p in pairs if p.measured.mean() >= 0.7]  # a reference that misses hits is no witness
    for i, a in enumerate(reliable):  # any two references that agree will do: a far room mic may be too noisy
        for b in reliable[i + 1 :]:
            both = a.measured & b.measured
            if both.sum() < params.min_hits:
                continue
            wander = min(a.spread_ms or 0.0, b.spread_ms or 0.0)
            diff_spread = _robust_spread(a.lags_ms[both] - b.lags_ms[both])
            if diff_spread <= min(params.max_disagreement_ms, params.max_disagreement_share * wander):
                return True
    return False


# ------------------------------------------------------------------------------------------- main
def _span(instrument: str, sr: int) -> tuple[LagSetting, int, int]:
    """An instrument's lag setting and its close-mic window: samples before and after the attack."""
    setting = LAG_SETTINGS.get(instrument, LAG_SETTINGS["snare"])
    return setting, int(setting.pre_ms * 1e-3 * sr), int(setting.post_ms * 1e-3 * sr)


def _detect_close_hits(
    session: Session, layout: KitLayout, roles: dict[str, Role], params: KitParams, sr: int, progress: Progress
) -> tuple[dict[str, Hits], dict[str, np.ndarray]]:
    """Own-drum hits of every close mic, and each hit's close-mic window (one read per mic)."""
    hits, windows = {}, {}
    for i, name in enumerate(layout.close):
        progress("Finding drum hits", i, len(layout.close))
        audio = read(session.track(name), start=0, frames=session.frames)
        found = detect_hits(audio, sr=sr, instrument=roles[name], track=name, params=params.onsets)
        _, pre, post = _span(roles[name], sr)
        padded = np.concatenate((np.zeros(pre, np.float32), audio, np.zeros(post, np.float32)))
        windows[name] = (
            np.stack([padded[p : p + pre + post] for p in found.positions])
            if len(found)
            else (np.zeros((0, pre + post), np.float32))
        )
        hits[name] = found
    kept = attribute_bleed(hits, {n: _drum_key(n, roles[n]) for n in hits}, sr=sr)
    for name, h in kept.items():
        _, pre, _ = _span(roles[name], sr)
        rows = np.isin(hits[name].positions, h.positions)
        windows[name] = _until_next_hit(windows[name][rows], h.positions, pre, guard=int(0.0005 * sr))
    return kept, windows


def analyse_kit(
    session: Session,
    *,
    layout: KitLayout,
    roles: dict[str, Role],
    params: KitParams,
    usable: set[str],
    progress: Progress = quiet,
) -> KitAnalysis:
    """Hits, per-hit lags, pair states, the edited side, tempo and findings for one kit.

    usable : the tracks QC found readable, at the session rate and not silent.
    """
    sr = session.sr or 48000
    layout = KitLayout(
        close=tuple(n for n in layout.close if n in usable),
        references=tuple(n for n in layout.references if n in usable),
        pairs=tuple(p for p in layout.pairs if p.close in usable and p.reference in usable),
        siblings=layout.siblings,
    )
    hits, close_windows = _detect_close_hits(session, layout, roles, params, sr, progress)
    min_lag, max_lag = int(params.min_lag_ms * 1e-3 * sr), int(params.max_lag_ms * 1e-3 * sr)
    spans = {name: _span(roles[name], sr) for name in hits}  # close mic -> setting, samples before, after
    # each reference is read once, around the hits of every close mic it is paired with
    reference_windows: dict[tuple[str, str], np.ndarray] = {}
    references = sorted({p.reference for p in layout.pairs})
    for i, reference in enumerate(references):
        progress("Reading reference mics", i, len(references))
        closes = [p.close for p in layout.pairs if p.reference == reference]
        starts = [hits[c].positions - spans[c][1] + min_lag for c in closes]
        lengths = [spans[c][1] + spans[c][2] + max_lag - min_lag for c in closes]
        together = read_windows(session.track(reference), np.concatenate(starts), max(lengths))
        bounds = np.cumsum([0] + [len(x) for x in starts])
        for c, lo, hi, n in zip(closes, bounds[:-1], bounds[1:], lengths, strict=True):
            reference_windows[(c, reference)] = together[lo:hi, :n]

    pairs: list[PairAnalysis] = []
    for i, pair in enumerate(layout.pairs):
        progress("Measuring per-hit lags", i, len(layout.pairs))
        h = hits[pair.close]
        setting = spans[pair.close][0]
        lags, signs = measure_lags(
            close_windows[pair.close],
            reference_windows.pop((pair.close, pair.reference)),
            sr=sr,
            band=setting.band,
            min_lag=min_lag,
            min_correlation=params.min_correlation,
            phat=setting.phat,
        )
        lags_ms = lags / sr * 1e3
        natural, basis, share = _natural_lag(lags_ms, params)
        spread = _robust_spread(lags_ms) if basis != "none" else None
        state = _pair_state(lags_ms, share, spread or 0.0, roles[pair.reference], natural, params)
        pairs.append(
            PairAnalysis(
                close=pair.close,
                reference=pair.reference,
                instrument=pair.instrument,
                positions=h.positions,
                lags_ms=lags_ms,
                signs=signs,
                natural_lag_ms=natural,
                natural_lag_basis=basis,
                spread_ms=spread,
                state=state,
            )
        )

    tempo = _tempo(hits, roles, session)
    edited, pairs = _edited_side(pairs, layout, tempo, sr, params)
    pairs = _natural_when_all_moved(pairs, edited, tempo, sr)
    findings = _findings(pairs, edited, layout, roles, sr)
    moved_hits = _count_moved(pairs, edited, sr, params)
    return KitAnalysis(
        hits=hits, pairs=tuple(pairs), edited=edited, moved_hits=moved_hits, tempo=tempo, findings=tuple(findings)
    )


def _until_next_hit(windows: np.ndarray, positions: np.ndarray, pre: int, *, guard: int) -> np.ndarray:
    """Close-mic windows with everything from just before the next hit on silenced: a window must hold
    one hit only, or a flam (a second attack ms later, moved differently) would blur its lag."""
    out = windows.copy()
    gaps = np.diff(positions, append=np.iinfo(np.int64).max // 2)
    for i, gap in enumerate(gaps):
        stop = pre + int(gap) - guard
        if stop < out.shape[1]:
            out[i, max(stop, pre + guard) :] = 0.0
    return out


def _tempo(hits: dict[str, Hits], roles: dict[str, Role], session: Session) -> Tempo | None:
    sr = session.sr or 48000
    chosen = [h for n, h in hits.items() if roles[n] in ("kick", "snare", "hihat")] or list(hits.values())
    if not chosen:
        return None
    times = np.concatenate([h.positions for h in chosen]) / sr
    kicks = [h.positions / sr for n, h in hits.items() if roles[n] == "kick"]
    return estimate_tempo(times, end_s=session.duration_s, downbeat_times_s=kicks[0] if kicks else None)


def _edited_side(
    pairs: list[PairAnalysis], layout: KitLayout, tempo: Tempo | None, sr: int, params: KitParams
) -> tuple[tuple[str, ...], list[PairAnalysis]]:
    """Which tracks were moved hit by hit, and the pairs with unconfirmed wandering set back to coherent.

    A close mic is edited when its references agree hit by hit on its moves. If a reference wanders
    against every close mic too, the side that sits on the tempo grid is the edited one.
    """
    by_close: dict[str, list[PairAnalysis]] = {}
    for p in pairs:
        by_close.setdefault(p.close, []).append(p)
    edited_close = []
    for close, own in by_close.items():
        wandering = [p for p in own if p.state == "partially_quantised"]
        if (
            wandering
            and len(wandering) >= 0.5 * len(own)
            and _consistent_moves(wandering, params)
            and _sits_on_grid(wandering[0], sr, tempo)
        ):
            edited_close.append(close)
    confirmed = []
    for p in pairs:
        if p.state == "partially_quantised" and p.close not in edited_close:
            p = replace(p, state="coherent")  # bleed or a second source, not an edit: never cry wolf
        confirmed.append(p)

    edited: list[str] = list(edited_close)
    # References that wander against every measured close mic may be the edited side instead.
    for ref in layout.references:
        own = [p for p in confirmed if p.reference == ref and p.natural_lag_ms is not None]
        if own and all(p.state == "partially_quantised" for p in own) and tempo is not None:
            close_err = np.concatenate([tempo.grid_error_s(p.positions / sr) for p in own])
            ref_times = np.concatenate([(p.positions / sr + p.lags_ms / 1e3)[p.measured] for p in own])
            ref_err = tempo.grid_error_s(ref_times)
            if np.median(np.abs(ref_err)) < 0.5 * np.median(np.abs(close_err)):
                edited.append(ref)
    if any(r in edited for r in layout.references):
        edited = [e for e in edited if e in layout.references]
    return tuple(sorted(edited)), confirmed


def _natural_when_all_moved(
    pairs: list[PairAnalysis], edited: tuple[str, ...], tempo: Tempo | None, sr: int
) -> list[PairAnalysis]:
    """Natural lags of edited close mics whose every hit was moved: the median lag of the hits the edit
    put on the grid, i.e. the drummer is assumed centred on the beat.

    Nothing in the audio fixes such a pair's natural lag (moving every close-mic region by one more
    constant would sound the same), so this is an assumption, reported as `natural_lag_basis:
    "centred"`: it is off by the drummer's average push or drag. Flams the edit left behind (the
    next hit's attack running on before its crossfade) are left out: they carry the previous move.
    """
    out = []
    for p in pairs:
        if p.close in edited and p.natural_lag_basis == "centred" and tempo is not None:
            on_grid = p.measured & (np.abs(tempo.grid_error_s(p.positions / sr)) < ON_GRID_S)
            if on_grid.sum() >= 3:
                p = replace(p, natural_lag_ms=float(np.median(p.lags_ms[on_grid])))
        out.append(p)
    return out


def _sits_on_grid(pair: PairAnalysis, sr: int, tempo: Tempo | None) -> bool:
    """Was the close mic the side put on a grid? Its hits must fit a straight tempo grid much more
    tightly than the times the reference says they were played: that is what quantising does, and
    what bleed of other drums into an unedited mic never does. Each side gets its own best grid."""
    m = pair.measured
    close_s = pair.positions[m] / sr
    played_s = close_s + (pair.lags_ms[m] - np.median(pair.lags_ms[m])) / 1e3
    end = float(max(close_s.max(), played_s.max())) + 1.0
    hint = tempo.bpm if tempo else None
    close_grid = estimate_tempo(close_s, end_s=end, bpm_hint=hint)
    played_grid = estimate_tempo(played_s, end_s=end, bpm_hint=hint)
    if close_grid is None or played_grid is None:
        return False  # too few hits to judge: never cry wolf
    # the share of hits on the grid, not a typical error: the flams an edit leaves behind are off it
    close_share = float(np.mean(np.abs(close_grid.grid_error_s(close_s)) < ON_GRID_S))
    played_share = float(np.mean(np.abs(played_grid.grid_error_s(played_s)) < ON_GRID_S))
    return bool(close_share >= 0.2 and close_share >= 2.5 * played_share)


def _count_moved(pairs: list[PairAnalysis], edited: tuple[str, ...], sr: int, params: KitParams) -> int:
    """Distinct hits moved on the edited tracks (a kick and a snare hit count as two; one hit seen on
    Snare Top and Snare Bottom as one)."""
    times: list[int] = []
    for p in pairs:
        if p.state == "partially_quantised" and (p.close in edited or p.reference in edited):
            moved = p.measured & (np.abs(p.moves_ms) > params.unmoved_ms)
            times.extend(p.positions[moved].tolist())
    if not times:
        return 0
    ordered = np.unique(np.array(times))
    return int(1 + np.sum(np.diff(ordered) > int(0.01 * sr)))


def _names(names: list[str]) -> str:
    return "/".join(n.rsplit(".", 1)[0] for n in names)


def _findings(
    pairs: list[PairAnalysis], edited: tuple[str, ...], layout: KitLayout, roles: dict[str, Role], sr: int
) -> list[Finding]:
    out: list[Finding] = []
    for track in edited:
        own = [p for p in pairs if (p.close == track or p.reference == track) and p.state == "partially_quantised"]
        if not own:
            continue
        others = sorted({p.reference if p.close == track else p.close for p in own})
        moved = set()
        for p in own:
            moved |= set(p.positions[p.measured & (np.abs(p.moves_ms) > 0.05)].tolist())
        times = sorted(moved) or [int(own[0].positions[0])]
        spread = float(np.median([p.spread_ms for p in own if p.spread_ms is not None]))
        instrument = own[0].instrument if track in layout.close else "kit"
        out.append(
            Finding(
                kind="partial_quantisation",
                severity="error",
                track=track,
                start_s=round(times[0] / sr, 4),
                end_s=round(times[-1] / sr, 4),
                value=round(spread, 3),
                unit="ms",
                count=len(moved),
                message=f"{len(moved)} {instrument} hits were moved on {_names([track])} but not on {_names(others)} "
                f"(spread {spread:.1f} ms): the kit flams",
                fix="sessionfix align SESSION --out FIXED",
            )
        )
    # constant offsets: a reference late against every close mic
    for ref in layout.references:
        # pairs whose hits agree on one lag (a tom mic full of bleed may not, and must not hide it)
        own = [
            p for p in pairs if p.reference == ref and p.measured.sum() >= 6 and p.natural_lag_basis == "unmoved_hits"
        ]
        far = MAX_PLAUSIBLE_LAG_MS.get(roles[ref], 30.0)
        offset = [p for p in own if p.state != "partially_quantised" and (p.natural_lag_ms or 0.0) > far]
        if len(offset) >= 2 and len(offset) >= 2 / 3 * len(own):
            lag = float(np.median([p.natural_lag_ms for p in offset]))
            delay = lag - NOMINAL_LAG_MS.get(roles[ref], 3.0)
            out.append(
                Finding(
                    kind="mic_delay",
                    severity="error",
                    track=ref,
                    value=round(delay, 2),
                    unit="ms",
                    message=f"{_names([ref])} arrives {lag:.1f} ms after the close mics, more than its distance "
                    "allows: "
                    f"delayed by about {delay:.1f} ms (a latency-compensation or routing fault); "
                    f"slide it {delay:.1f} ms earlier",
                )
            )
    # a reference in reversed polarity against most close mics
    for ref in layout.references:
        signs = [np.sign(np.sum(p.signs)) for p in pairs if p.reference == ref and np.any(p.signs)]
        if signs and np.mean(np.array(signs) < 0) > 0.5:
            out.append(
                Finding(
                    kind="polarity",
                    severity="warning",
                    track=ref,
                    value=None,
                    unit=None,
                    message=f"{_names([ref])} is in reversed polarity against the close mics; flip it",
                )
            )
    return out
