"""Drum hits on a close mic: detected on a band-limited energy envelope, refined to the sample.

Conventions
- Positions are integer samples on the session timeline; levels are dB of the band-limited signal.
- A hit is the mic's own drum: candidates far below the mic's typical hit level are bleed, and
  `attribute_bleed` drops a hit that another close mic heard relatively louder at the same moment.
- Only DSP (BSD/MIT code): no trained network is needed on this path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter, find_peaks, sosfiltfilt

from .parallel import map_ordered
from .progress import Progress, quiet
from .roles import SAME_DRUM_DB, KitLayout, Role
from .session import Audio, HeldWindows, Pending, Session, Track, TrackAudio, opened, windows

# Band in which each instrument's own hits stand out from the kit's bleed, Hz.
DETECTION_BANDS: dict[str, tuple[float, float]] = {
    "kick": (40.0, 5000.0),  # body and beater click: the click gives a sharp attack
    "snare": (150.0, 8000.0),  # body and wires
    "tom": (60.0, 5000.0),
    "hihat": (5000.0, 16000.0),
    "cymbal": (3000.0, 16000.0),
}


# A resonant drum's decay has bumps of its own (shell modes beating, a head bouncing): within this many
# ms after a hit, a candidate this many dB quieter than it is the same hit still ringing.
RING_MASK: dict[str, tuple[float, float]] = {"kick": (300.0, 8.0), "tom": (300.0, 8.0), "snare": (40.0, 12.0)}
# A low drum's decay also swells back after a null where two shell modes beat (tens of ms after the
# hit, only a few dB down); a new stroke brings the beater's or stick's click with it, a swell does
# not. Within SWELL_WINDOW_MS, a candidate quieter than the hit whose click band does not rise by
# SWELL_CLICK_RISE_DB is the same hit swelling; the same test, looking ahead, finds a lead-in.
CLICK_BANDS: dict[str, tuple[float, float]] = {"kick": (1500.0, 6000.0), "tom": (1500.0, 6000.0)}
SWELL_QUIETER_DB = 1.0
# Two modes of equal amplitude in phase are twice one of them: after a stroke with a click, a click-less
# swell may come up to 6 dB louder than the stroke's own onset (Audiophob's kick: +2.9..+3.6 dB, 19 and
# 58 ms after each stroke). It follows a null, 1 / (2 df) after the stroke: shell modes of a kick or tom
# beat at df <= 50 Hz, so not within 10 ms (there, a click-less candidate is the stroke's own body rising).
# Only where the stroke brings a click (its click band within CLICK_AUDIBLE_DB of the stroke's level) does
# a click-less rise tell a swell: Audiophob's kick clicks 13 dB under its body, ElectricEmpire's 37 dB
# (no click: an edit's second attack, as loud as the first, has none either). And a swell's click band
# stays under the stroke's (Audiophob: 6-23 dB); a second stroke soon after the first (an edit's flam,
# 9 ms on the real kit) rises little over the first's click, but reaches its level.
SWELL_LOUDER_DB = 6.0
SWELL_NULL_MS = 10.0
CLICK_AUDIBLE_DB = 25.0
SWELL_CLICK_RISE_DB = 4.0  # strokes measured on the eval kits: 3-50 dB, median 12-17; swells -4..+3
SWELL_WINDOW_MS = 80.0  # swells come within tens of ms; a click-less stroke an eighth later is a stroke
SWELL_LEAD_MS = 25.0  # a click-less rise this soon before a louder stroke with a click is its lead-in
# A hit raises its band's energy this much over the preceding few ms. A snare struck again 10-20 ms
# after a stroke of the same level (an edit's flam, a drag) rises only ~7 dB over the first's ring; a
# kick's or tom's ring bumps rise as much, and their strokes 12-50 dB.
RISE_DB: dict[str, float] = {"kick": 9.0, "tom": 9.0}
DEFAULT_RISE_DB = 6.0
RISE_FLOOR_DB = 6.0  # candidates are found above this rise, then judged; `rise_db` only filters them
LOUD_DB = 6.0  # hits within this of the mic's loud level define its drum's sound and are never bleed
PROFILE_MS = 30.0  # the part of a hit whose spectrum identifies the drum
ATTACK_SHARE = 0.05  # an attack starts where |x| rises this share of the way to its peak (as `_refine`)


@dataclass(frozen=True)
class OnsetParams:
    """Hit detection settings."""

    hop_ms: float = 1.0  # envelope resolution; hits are then refined on the waveform
    window_ms: float = 3.0  # envelope smoothing: longer than a snare's or click's cycle, shorter than an attack
    rise_db: float | None = None  # a hit raises the band energy this much over the preceding few ms (RISE_DB)
    rise_lag_ms: float = 4.0  # ...compared with the maximum this long before
    min_interval_ms: float = 3.0  # two attacks closer than this are one hit; an edit can leave a flam 4-10 ms ahead
    bleed_db: float = 30.0  # candidates this far below the mic's loud hits are bleed; ghost notes sit 15-25 dB below
    min_similarity: float = (
        0.7  # quieter candidates whose spectrum's shape correlates less with the loud hits' are bleed
    )
    refine_fraction: float = 0.05  # the attack starts where |x| first rises this share of the way to its peak


@dataclass(frozen=True)
class Hits:
    """The hits of one close mic. Arrays are sorted by position and share their length."""

    track: str
    positions: np.ndarray  # int64, samples on the session timeline, first sample of the attack
    levels_db: np.ndarray  # float, peak band level of each hit, dB re full scale

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def loud_db(self) -> float:
        """The mic's loud level, dB: the 98th percentile of its hits' levels (its own drum's strokes)."""
        return float(np.percentile(self.levels_db, 98)) if len(self) else 0.0


def band_sos(sr: int, band: tuple[float, float]) -> np.ndarray:
    """Second-order sections of the 2nd-order Butterworth band-pass on `band` (Hz; the top capped at 0.45 sr),
    designed once per band and rate (a design costs ~4 ms; a scan filters hundreds of blocks)."""
    return np.array(_band_design(sr, band))


@lru_cache(maxsize=64)
def _band_design(sr: int, band: tuple[float, float]) -> tuple[tuple[float, ...], ...]:
    low, high = band
    sos = butter(2, [low, min(high, 0.45 * sr)], btype="band", fs=sr, output="sos")
    return tuple(map(tuple, sos.tolist()))


def band_filter(signal: np.ndarray, sr: int, band: tuple[float, float]) -> np.ndarray:
    """Zero-phase band-pass (4th order Butterworth, applied forwards and backwards) along the last axis."""
    return sosfiltfilt(band_sos(sr, band), signal.astype(np.float32, copy=False))


def _envelope_db(filtered: np.ndarray, hop: int, window: int) -> np.ndarray:
    """RMS level over `window` samples ending at each hop boundary, dB (causal, so rises are not early);
    along the last axis."""
    energy = np.cumsum(filtered**2, axis=-1)
    energy = np.concatenate((np.zeros(energy.shape[:-1] + (1,)), energy), axis=-1)
    ends = np.arange(hop, filtered.shape[-1] + 1, hop)
    starts = np.maximum(ends - window, 0)
    return 10 * np.log10((energy[..., ends] - energy[..., starts]) / np.maximum(ends - starts, 1) + 1e-14)


ENVELOPE_BLOCK_S = 30.0  # seconds of audio filtered at a time: memory is bounded by it, not the track
CANDIDATE_BATCH = 256  # candidates whose windows are filtered at once
FILTER_MARGIN_S = 1.0  # ...plus this much on each side, where the zero-phase filter's ringing has died away


@dataclass(frozen=True)
class Listening:
    """Where and how finely a close mic's hits are looked for: the detection band (Hz) and the envelope's
    hop and window (samples)."""

    band: tuple[float, float]
    hop: int
    window: int

    @classmethod
    def of(cls, instrument: str, sr: int, params: OnsetParams, band: tuple[float, float] | None = None) -> Listening:
        hop = max(1, int(params.hop_ms * 1e-3 * sr))
        window = max(hop, int(params.window_ms * 1e-3 * sr))
        return cls(band or DETECTION_BANDS.get(instrument, (100.0, 8000.0)), hop, window)


@dataclass(frozen=True)
class Heard:
    """A close mic's detection envelope (`band_envelope_db`, dB per hop), made while another pass decoded
    the stem (the QC's), so the hit detection need not decode and filter it again."""

    listening: Listening
    level: np.ndarray


class BandEnvelope:
    """`band_envelope_db` of a signal of `n` samples fed in order, a piece at a time (`feed`, then
    `level`): filtered in blocks of ENVELOPE_BLOCK_S with FILTER_MARGIN_S of real audio either side of
    each (the same values as filtering the whole track, to rounding), so memory holds a block, not the
    track; the values do not depend on how the signal is cut into pieces."""

    def __init__(self, n: int, sr: int, listening: Listening) -> None:
        self.n, self.sr, self.listening = n, sr, listening
        self.ends = np.arange(listening.hop, n + 1, listening.hop)
        self.out = np.empty(len(self.ends))
        self.per_block = max(1, int(ENVELOPE_BLOCK_S * sr) // listening.hop)
        self.margin = int(FILTER_MARGIN_S * sr)
        self.done = 0  # envelope values made
        self.signal = Pending()  # the signal fed and still needed

    def _block(self) -> tuple[np.ndarray, int, int, int, int]:
        """The next block's hop ends, the samples it covers [lo, hi) and those it filters [read_lo, read_hi)."""
        block_ends = self.ends[self.done : self.done + self.per_block]
        lo, hi = max(int(block_ends[0]) - self.listening.window, 0), int(block_ends[-1])
        return block_ends, lo, hi, max(lo - self.margin, 0), min(hi + self.margin, self.n)

    def feed(self, samples: np.ndarray) -> None:
        """The next `samples` of the signal (mono, in order)."""
        self.signal.append(np.asarray(samples, np.float32))
        while self.done < len(self.ends):
            block_ends, lo, hi, read_lo, read_hi = self._block()
            if self.signal.end < read_hi:
                return
            piece = self.signal.span(read_lo, read_hi)
            filtered = band_filter(piece, self.sr, self.listening.band)[lo - read_lo : hi - read_lo]
            starts = np.maximum(block_ends - self.listening.window, 0)
            self.out[self.done : self.done + len(block_ends)] = 10 * np.log10(
                _window_energy(filtered, block_ends - lo, starts - lo, self.listening.hop)
                / np.maximum(block_ends - starts, 1)
                + 1e-14
            )
            self.done += len(block_ends)
            self.signal.drop_before(self._block()[3] if self.done < len(self.ends) else self.signal.end)

    @property
    def level(self) -> np.ndarray:
        """The envelope, dB per hop; once the whole signal has been fed."""
        if self.done < len(self.ends):
            raise ValueError(f"the envelope needs {self.n} samples; {self.signal.end} were fed")
        return self.out


def _window_energy(x: np.ndarray, ends: np.ndarray, starts: np.ndarray, hop: int) -> np.ndarray:
    """Sum of x**2 over [starts[i], ends[i]) (samples into x), float64. Where every bound falls on a hop
    (the envelope's windows are whole hops), from per-hop sums added a window at a time: no running sum
    over the block, whose differences lose a quiet window's energy to rounding after a loud passage."""
    squared = np.square(x, dtype=np.float64)
    if len(x) % hop or np.any(ends % hop) or np.any(starts % hop):
        energy = np.concatenate(([0.0], np.cumsum(squared)))
        return energy[ends] - energy[starts]
    per_hop = squared.reshape(-1, hop).sum(axis=1)
    widest = int(np.max(ends - starts)) // hop
    padded = np.concatenate((np.zeros(widest), per_hop))  # windows shorter than the widest: zeros before
    sums = np.zeros(len(ends))
    for k in range(widest):  # the window's hops, the last first (a handful: 3 for 3 ms at 1 ms)
        hop_index = ends // hop - 1 - k
        inside = hop_index >= starts // hop
        sums[inside] += padded[hop_index[inside] + widest]
    return sums


def band_envelope_db(signal: Audio, sr: int, band: tuple[float, float], hop: int, window: int) -> np.ndarray:
    """`_envelope_db` of the band-filtered signal (see BandEnvelope), the signal read ENVELOPE_BLOCK_S at a
    time, so a long track costs no more memory than a block."""
    n = len(signal)
    envelope = BandEnvelope(n, sr, Listening(band, hop, window))
    step = int(ENVELOPE_BLOCK_S * sr)
    for lo in range(0, n, step):
        envelope.feed(np.asarray(signal[lo : min(lo + step, n)]))
    return envelope.level


def _refine(signal: Audio, coarse: int, sr: int, fraction: float) -> int:
    """First sample of the attack near `coarse`: where |x| first reaches `fraction` of the hit's peak
    (in the 4 ms before to 12 ms after it) above the level just before it (the 3 ms before that)."""
    pre, post = int(0.004 * sr), int(0.012 * sr)
    lo = max(coarse - pre, 0)
    window = np.abs(signal[lo : coarse + post].astype(np.float64))
    if not window.size:
        return coarse
    floor = float(np.max(np.abs(signal[max(lo - int(0.003 * sr), 0) : lo + 1].astype(np.float64)), initial=0.0))
    peak = float(window.max())
    threshold = floor + fraction * (peak - floor)
    above = np.flatnonzero(window >= threshold)
    return lo + int(above[0]) if above.size else coarse


def _refine_all(signal: Audio, coarse: np.ndarray, sr: int, fraction: float) -> np.ndarray:
    """`_refine` of every position in `coarse` (samples), reading the signal once per batch of windows."""
    pre, post, before = int(0.004 * sr), int(0.012 * sr), int(0.003 * sr)
    coarse = np.asarray(coarse, np.int64)
    out = coarse.copy()
    # near either end of the signal a window is cut short: those few are refined one at a time
    inside = (coarse - pre - before >= 0) & (coarse + post <= len(signal))
    for edge in np.flatnonzero(~inside):
        out[edge] = _refine(signal, int(coarse[edge]), sr, fraction)
    rows = np.flatnonzero(inside)
    for k in range(0, len(rows), CANDIDATE_BATCH):
        batch = rows[k : k + CANDIDATE_BATCH]
        magnitude = np.abs(windows(signal, coarse[batch] - pre - before, before + pre + post).astype(np.float64))
        floor = magnitude[:, : before + 1].max(axis=1)
        window = magnitude[:, before:]
        above = window >= (floor + fraction * (window.max(axis=1) - floor))[:, None]
        out[batch] = np.where(above.any(axis=1), coarse[batch] - pre + np.argmax(above, axis=1), coarse[batch])
    return out


def attack_times(
    signal: Audio, sr: int, near_s: np.ndarray, period_s: np.ndarray, *, before_s: float, after_s: float
) -> np.ndarray:
    """The attack near each of `near_s` (seconds into `signal`), found like a close mic's hit: NaN-free;
    where there is no attack (no rise of 3 dB) the time given is returned.

    The level is the peak |x| over one period (`period_s`, at least 3 ms: a low note's cycles do not
    each look like an attack). The attack is the steepest rise of that level over one period between
    `before_s` before and `after_s` after the time given; it starts at the first sample that rises
    ATTACK_SHARE of the way from the level before it (its lowest point in the 40 ms before the rise:
    the previous sound's tail) to the attack's peak (the 30 ms after). A quiet noise before the attack
    (a pick, a finger on the string) is not the attack."""
    with opened(signal) as audio:  # a stem's file open once for all its notes
        return _attack_times(audio, sr, near_s, period_s, before_s=before_s, after_s=after_s)


def _attack_times(
    signal: Audio, sr: int, near_s: np.ndarray, period_s: np.ndarray, *, before_s: float, after_s: float
) -> np.ndarray:
    """`attack_times` of a signal read note by note."""
    hop = max(1, int(0.001 * sr))
    out = np.asarray(near_s, float).copy()
    for i, (t, period) in enumerate(zip(near_s, period_s, strict=True)):
        width = max(int(max(period, 0.003) * sr), 1)
        lo = max(int((t - before_s - 0.04) * sr), 0)
        hi = min(int((t + after_s + 0.03) * sr), len(signal))
        if hi - lo < 3 * width:
            continue
        magnitude = np.abs(signal[lo:hi].astype(np.float64))  # this note's span only: [lo, hi) of the signal
        level = maximum_filter1d(magnitude, size=width, origin=(width - 1) // 2)[::hop]  # causal peak
        level_db = 20 * np.log10(level + 1e-9)
        steps = max(width // hop, 1)
        rise = np.full_like(level_db, -np.inf)
        rise[steps:] = level_db[steps:] - level_db[:-steps]
        first = (int((t - before_s) * sr) - lo) // hop
        last = min(len(rise), (int((t + after_s) * sr) - lo) // hop + 1)
        if last <= max(first, 0):
            continue
        k = max(first, 0) + int(np.argmax(rise[max(first, 0) : last]))
        if rise[k] < 3.0:
            continue
        floor_at = max(k - 40, 0)  # 40 ms
        floor = float(level[floor_at : k + 1].min())
        peak = float(level[k : k + 31].max())
        threshold = floor + ATTACK_SHARE * (peak - floor)
        start, stop = (floor_at + int(np.argmin(level[floor_at : k + 1]))) * hop, k * hop + 1  # in the span
        above = np.flatnonzero(magnitude[start:stop] >= threshold)
        if above.size:
            out[i] = (lo + start + int(above[0])) / sr
    return out


def _click_rise(
    signal: Audio, sr: int, instrument: str, frames: np.ndarray, hop: int, params: OnsetParams
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate frame, how far the click band rises (dB) over the few ms before it, and its level
    (dB) in the few ms after it; +inf and NaN for instruments without a click band (no candidate is then
    judged a swell).

    Only a short window around each candidate is filtered (CANDIDATE_BATCH of them at once), not the track."""
    band = CLICK_BANDS.get(instrument)
    if band is None or not frames.size:
        return np.full(len(frames), np.inf), np.full(len(frames), np.nan)
    # the zero-phase detection band can rise a few ms before the waveform's attack: look 8 ms ahead
    ahead, behind, gap = int(8 / params.hop_ms), int(8 / params.hop_ms), max(1, int(2 / params.hop_ms))
    window = max(hop, int(params.window_ms * 1e-3 * sr))
    settle = int(0.02 * sr)  # filter run-in and run-out around the part that is measured, samples
    lead = -(-(behind * hop + window + settle) // hop) * hop  # whole frames, so the envelope frames align
    length = lead + (ahead + 1) * hop + settle
    rise, click_level = np.empty(len(frames)), np.empty(len(frames))
    for k in range(0, len(frames), CANDIDATE_BATCH):  # a batch at a time: memory does not grow with the song
        batch = frames[k : k + CANDIDATE_BATCH]
        segments = windows(signal, batch.astype(np.int64) * hop - lead, length)
        envelope = _envelope_db(band_filter(segments, sr, band), hop, window)
        # column k of `level`: the window ending k frames after the candidate's, for k = -behind .. ahead
        level = envelope[:, lead // hop - 1 - behind : lead // hop + ahead]
        after = level[:, behind + 1 : behind + ahead + 1].max(axis=1)  # windows ending 1..8 frames after f
        before = level[:, 1 : behind - gap + 1].max(axis=1)  # ...ending 7..2 frames before it
        rise[k : k + len(batch)] = after - before
        click_level[k : k + len(batch)] = after
    return rise, click_level


def _band_profiles(signal: Audio, positions: np.ndarray, sr: int) -> np.ndarray:
    """Per position, the level (dB) in half-octave bands from 100 Hz of the PROFILE_MS after it, less its
    mean over the bands: the shape of the sound's spectrum, whatever its loudness."""
    n = max(16, int(PROFILE_MS * 1e-3 * sr))
    starts = np.clip(positions, 0, len(signal))
    power = np.concatenate(
        [
            np.abs(np.fft.rfft(windows(signal, starts[k : k + CANDIDATE_BATCH], n) * np.hanning(n), axis=1)) ** 2
            for k in range(0, len(starts), CANDIDATE_BATCH)
        ]
        or [np.zeros((0, n // 2 + 1))]
    )
    f = np.fft.rfftfreq(n, 1 / sr)
    edges = [e for e in 100.0 * 2 ** (np.arange(17) / 2) if e < 0.45 * sr]
    bands = np.stack(
        [power[:, (f >= lo) & (f < hi)].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:], strict=False)], 1
    )
    levels = 10 * np.log10(bands + 1e-20)
    return levels - levels.mean(axis=1, keepdims=True)


def _similarity(profiles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Correlation of each band profile with the reference profile (1: the same spectral shape)."""
    a = profiles - profiles.mean(axis=1, keepdims=True)
    b = reference - reference.mean()
    denominator = np.sqrt((a**2).sum(axis=1) * (b @ b))
    return np.divide(a @ b, denominator, out=np.zeros(len(a)), where=denominator > 0)


def detect_hits(
    signal: Audio,
    *,
    sr: int,
    instrument: str,
    track: str,
    params: OnsetParams,
    start: int = 0,
    band: tuple[float, float] | None = None,
    heard: Heard | None = None,
) -> Hits:
    """Hits of `instrument` in one close mic's audio.

    signal : the mic on the session timeline from position `start` (an array, or a TrackAudio that is
        decoded a block at a time).
    band : where to listen, Hz (default DETECTION_BANDS[instrument]).
    heard : the signal's detection envelope as made on another pass; used where it was made as this
        detection listens (otherwise the envelope is made here).
    Returns positions in samples on the session timeline.

    Every test is made on each candidate against references that do not depend on the thresholds (the
    mic's loud level, the spectrum of its loud hits, the candidates above a fixed rise), so raising
    `rise_db`, lowering `bleed_db` or raising `min_similarity` can only remove hits.
    """
    listening = Listening.of(instrument, sr, params, band)
    hop = listening.hop
    if heard is not None and heard.listening == listening and len(heard.level) == len(signal) // hop:
        level = heard.level
    else:
        level = band_envelope_db(signal, sr, listening.band, hop, listening.window)
    empty = Hits(track, np.zeros(0, np.int64), np.zeros(0))
    if not level.size:
        return empty
    lag = max(1, int(round(params.rise_lag_ms / params.hop_ms)))
    # silence before the file starts, so a hit at t = 0 rises like any other
    padded = np.concatenate((np.full(lag, min(float(level.min()), -140.0)), level))
    before = maximum_filter1d(padded, size=lag, origin=(lag - 1) // 2)  # max over the `lag` frames ending here
    rise = np.nan_to_num(level - before[:-lag], neginf=-100.0)
    distance = max(1, int(params.min_interval_ms / params.hop_ms))
    rise_db = params.rise_db if params.rise_db is not None else RISE_DB.get(instrument, DEFAULT_RISE_DB)
    frames, _ = find_peaks(rise, height=min(RISE_FLOOR_DB, rise_db), distance=distance)
    if not frames.size:
        return empty
    if isinstance(signal, TrackAudio):
        # every window judged below lies within 40 ms before and 50 ms after a candidate (the click band's
        # run-in, the attack's search, the spectrum's 30 ms): decoded once here, not once per test
        signal = HeldWindows(signal, frames.astype(np.int64) * hop, before=int(0.04 * sr), after=int(0.05 * sr))
    # a hit's level: the peak of the next 20 ms, up to the next candidate if that comes after 5 ms (bleed
    # ahead of a stroke must not borrow the stroke's level; a snare's wires are still its own attack)
    span, own = max(1, int(20 / params.hop_ms)), max(1, int(5 / params.hop_ms))
    stops = np.minimum(frames + span, np.maximum(np.append(frames[1:], len(level)), frames + own))
    peak_level = np.array([level[f : max(f + 1, e)].max() for f, e in zip(frames, stops, strict=True)])
    # the mic's loud own hits: the 98th percentile of the envelope's peaks (toms are loud even when rare)
    peaks, _ = find_peaks(level, distance=max(1, int(50 / params.hop_ms)))
    typical = float(np.percentile(level[peaks], 98)) if peaks.size else float(level.max())
    masked = _masked(frames, peak_level, signal, sr, instrument, hop, level, params)
    # the filter rings ahead of an attack; the waveform does not
    positions = _refine_all(signal, frames.astype(np.int64) * hop, sr, params.refine_fraction)
    # Quieter candidates must sound like the mic's own drum: a ghost note has the spectrum of the loud hits,
    # another drum's or a cymbal's bleed does not (measured on the eval kits: own 0.86-0.98, bleed < 0.5).
    loud_peaks = peaks[level[peaks] >= typical - LOUD_DB] * hop
    reference = np.median(_band_profiles(signal, loud_peaks, sr), axis=0) if loud_peaks.size else None
    similar = np.ones(len(frames), bool)
    quiet = peak_level < typical - LOUD_DB
    if reference is not None and quiet.any():
        similar[quiet] = _similarity(_band_profiles(signal, positions[quiet], sr), reference) >= params.min_similarity
    keep = (rise[frames] >= rise_db) & (peak_level >= typical - params.bleed_db) & ~masked & similar
    positions, peak_level = positions[keep], peak_level[keep]
    order = np.argsort(positions, kind="stable")
    positions, peak_level = positions[order], peak_level[order]
    # two envelope peaks of one attack (a snare's wires after its head) refine to the same start: one hit,
    # as loud as the louder of them
    distinct = np.concatenate(([True], np.diff(positions) >= int(params.min_interval_ms * 1e-3 * sr)))
    loudest = np.maximum.reduceat(peak_level, np.flatnonzero(distinct)) if len(positions) else peak_level
    return Hits(track, positions[distinct] + start, loudest)


def _masked(
    frames: np.ndarray,
    peak_level: np.ndarray,
    signal: Audio,
    sr: int,
    instrument: str,
    hop: int,
    level: np.ndarray,
    params: OnsetParams,
) -> np.ndarray:
    """Candidates that are an earlier stroke still ringing or swelling, or a lead-in to a later stroke.

    Judged against every candidate above the fixed rise floor, not only the kept ones, so that the
    result does not depend on the thresholds applied afterwards.
    """
    mask_ms, mask_db = RING_MASK.get(instrument, (0.0, 0.0))
    click_rise, click_level = _click_rise(signal, sr, instrument, frames, hop, params)
    # a swell or lead-in is judged on its own level (the next 5 ms), not on a peak that may be the stroke's
    five_ms = max(1, int(5 / params.hop_ms))
    onset_level = maximum_filter1d(level, size=five_ms, origin=-(five_ms // 2))[frames]
    stroke = click_rise >= SWELL_CLICK_RISE_DB
    masked = np.zeros(len(frames), bool)
    window = int(max(mask_ms, SWELL_WINDOW_MS) / params.hop_ms)
    first = np.searchsorted(frames, frames - window)  # the earliest candidate within the window before each
    index = np.arange(len(frames))
    for back in range(1, int((index - first).max(initial=0)) + 1):  # each earlier candidate in turn, all at once
        i = index[index - back >= first]
        j = i - back
        since_ms = (frames[i] - frames[j]) * params.hop_ms
        ringing = (since_ms < mask_ms) & (peak_level[j] > peak_level[i] + mask_db)
        quieter = (onset_level[j] > onset_level[i] + SWELL_QUIETER_DB) & (peak_level[j] >= peak_level[i])
        beating = (
            stroke[j]
            & (click_level[j] > onset_level[j] - CLICK_AUDIBLE_DB)
            & (since_ms >= SWELL_NULL_MS)
            & (onset_level[i] < onset_level[j] + SWELL_LOUDER_DB)
            & (click_level[i] < click_level[j] - SWELL_CLICK_RISE_DB)
        )
        swell = (since_ms < min(mask_ms, SWELL_WINDOW_MS)) & (quieter | beating) & ~stroke[i]
        masked[i[ringing | swell]] = True
    # ...and some samples lead into the stroke with a soft, click-less rise a few ms before it
    lead = int(SWELL_LEAD_MS / params.hop_ms)
    last = np.searchsorted(frames, frames + lead, side="right") - 1  # the latest candidate within the lead
    for ahead in range(1, int((last - index).max(initial=0)) + 1):
        i = index[(index + ahead <= last) & ~stroke]
        j = i + ahead
        leads = stroke[j] & (onset_level[j] > onset_level[i] + SWELL_QUIETER_DB)
        masked[i[leads]] = True
    return masked


def attribute_bleed(
    hits: dict[str, Hits], drum_of: dict[str, str], *, sr: int, window_ms: float = 10.0, margin_db: float = 6.0
) -> dict[str, Hits]:
    """Drop hits that belong to another drum (`own_hits`)."""
    keep = own_hits(hits, drum_of, sr=sr, window_ms=window_ms, margin_db=margin_db)
    return {name: Hits(name, h.positions[keep[name]], h.levels_db[keep[name]]) for name, h in hits.items()}


def own_hits(
    hits: dict[str, Hits], drum_of: dict[str, str], *, sr: int, window_ms: float = 10.0, margin_db: float = 6.0
) -> dict[str, np.ndarray]:
    """Per mic, which of its hits are its own drum's (bool per hit).

    When two close mics on different drums both have a hit within `window_ms`, each hit's level is
    compared with its own mic's loud hits (98th percentile); the mic on which the event is
    relatively quieter by more than `margin_db` heard bleed, and loses the hit. A mic whose hits mostly
    follow another drum's by one fixed delay loses those (`_echoes`).
    """
    window = int(window_ms * 1e-3 * sr)
    typical = {name: h.loud_db for name, h in hits.items()}
    keep = {name: np.ones(len(h), bool) for name, h in hits.items()}
    names = sorted(hits)
    for a in names:  # two mics named for one drum: one that hears its hits SAME_DRUM_DB down is not on it
        for b in names:
            if a != b and drum_of[a] == drum_of[b] and len(hits[a]) and len(hits[b]):
                bleed, both = _far_below(hits[a], hits[b], window)
                if both.any() and bleed[both].mean() >= 0.5:  # ...most strokes both hear are that far down: it
                    # is inside another drum (a double kit's second kick), so what it hears that far down of the
                    # rest of the kit is bleed too (the snare's, a tom's: often more hits than the kick's)
                    bleed |= hits[a].levels_db < typical[b] - SAME_DRUM_DB
                keep[a] &= ~bleed
    for a in names:
        for b in names:
            if a == b or drum_of[a] == drum_of[b] or not len(hits[a]) or not len(hits[b]):
                continue
            pos_b = hits[b].positions
            idx = np.searchsorted(pos_b, hits[a].positions)
            for i, p in enumerate(hits[a].positions):
                for j in (idx[i] - 1, idx[i]):
                    if 0 <= j < len(pos_b) and abs(int(pos_b[j]) - int(p)) <= window:
                        relative_a = hits[a].levels_db[i] - typical[a]
                        relative_b = hits[b].levels_db[j] - typical[b]
                        if relative_a < relative_b - margin_db:
                            keep[a][i] = False
    for a in names:  # ...then, among the hits left, the ones that echo another drum's
        left = np.flatnonzero(keep[a])
        others = [
            Hits(b, hits[b].positions[keep[b]], hits[b].levels_db[keep[b]] - typical[b])
            for b in names
            if b != a and drum_of[a] != drum_of[b]
        ]
        keep[a][left] = _not_echoes(
            hits[a].positions[left], hits[a].levels_db[left] - typical[a], others, sr=sr, after=window
        )
    return keep


def _far_below(a: Hits, b: Hits, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Hits of `a` heard within `window` samples of one of `b`'s and more than SAME_DRUM_DB quieter (the
    bleed of b's drum into a mic that is not on it: a second kick drum's mic, named like a Kick Out), and
    the hits of `a` within `window` of one of `b`'s at all (bool per hit, each)."""
    far, near = np.zeros(len(a), bool), np.zeros(len(a), bool)
    if not len(b.positions):
        return far, near
    j = np.clip(np.searchsorted(b.positions, a.positions), 1, len(b.positions))
    for k in (j - 1, np.minimum(j, len(b.positions) - 1)):
        close = np.abs(b.positions[k] - a.positions) <= window
        near |= close
        far |= close & (a.levels_db < b.levels_db[k] - SAME_DRUM_DB)
    return far, near


ECHO_MAX_MS = 80.0  # another drum's stroke can set a mic's drum ringing, or reach it late, this long after
ECHO_SHARE = 0.5  # ...and when this share of a mic's hits follow another mic's by one delay, they are its
ECHO_MARGIN_DB = 6.0  # ...and its cause is at most this much quieter than it, each level taken against its
# own mic's loud hits: an event far below another mic's strokes (an edit's crossfade, a faint swell) sets no
# drum ringing at that drum's loud level, however regularly a quantised groove places the two


def _not_echoes(positions: np.ndarray, levels_db: np.ndarray, others: list[Hits], *, sr: int, after: int) -> np.ndarray:
    """Which of one mic's hits are left (bool per hit) once those echoing each of `others` (other drums'
    hits, sorted, levels relative to their mic's loud level) are taken out in turn (`_echoes`).
    `levels_db` : this mic's hits' levels relative to its own loud level."""
    keep = np.ones(len(positions), bool)
    for other in others:
        left = np.flatnonzero(keep)
        keep[left[_echoes(positions[left], levels_db[left], other, sr=sr, after=after)]] = False
    return keep


def _echoes(positions: np.ndarray, levels_db: np.ndarray, others: Hits, *, sr: int, after: int) -> np.ndarray:
    """Hits of one mic that follow another drum's hits by one fixed delay (within 1.5 ms) of more than
    `after` samples: most of them do only when that drum sets this one ringing or its bleed rises late in
    this mic's band. A mic's own strokes follow another drum's at whatever delay the groove gives (a
    quantised groove gives one delay: a hit whose preceding event is more than ECHO_MARGIN_DB quieter, each
    against its own mic's loud hits, is not that event's echo).
    Hits closer than `after` are one event heard on two mics, judged by their levels, not here: a mic that
    hears only another drum's bleed (a tom never played) hears it at the same moment, and would
    otherwise take that drum's hits from its own mic."""
    out = np.zeros(len(positions), bool)
    if len(positions) < 8 or not len(others):
        return out
    j = np.searchsorted(others.positions, positions) - 1
    delay = np.where(j >= 0, positions - others.positions[np.maximum(j, 0)], -1)
    caused = others.levels_db[np.maximum(j, 0)] >= levels_db - ECHO_MARGIN_DB
    near = (delay > after) & (delay <= ECHO_MAX_MS * 1e-3 * sr) & caused
    if near.sum() < ECHO_SHARE * len(positions):
        return out
    width = int(0.0015 * sr)
    ordered = np.sort(delay[near])
    counts = np.searchsorted(ordered, ordered + 2 * width, side="right") - np.arange(len(ordered))
    best = int(np.argmax(counts))
    if counts[best] < ECHO_SHARE * len(positions):
        return out
    centre = float(np.median(ordered[best : best + counts[best]]))
    return near & (np.abs(delay - centre) <= width)


@dataclass(frozen=True)
class MixHits:
    """Drum hits on a kit recorded or bounced to one track (a drum bus, a kit stem). Arrays share
    their length, sorted by position."""

    track: str
    positions: np.ndarray  # int64, samples on the session timeline, first sample of each attack
    strengths: np.ndarray  # float, onset strength (spectral flux), louder hits higher
    kick: np.ndarray  # bool, a loud hit whose energy rises most below 120 Hz (the kick)
    snare: np.ndarray  # bool, another loud hit with a body between 150 and 400 Hz (the snare)
    bpm: float | None = None  # the tempo librosa reads from the onset strength (its octave is reliable)


MIX_BLOCK_S = 30.0  # a one-mic kit is analysed in blocks of this many seconds
TEMPO_HOP = 512  # librosa's usual onset-strength hop for its tempo estimate, samples


def detect_mix_hits(signal: Audio, *, sr: int, track: str, start: int = 0) -> MixHits:
    """Every drum hit of a one-mic kit, found with librosa's spectral-flux onset detection (every drum is
    in the one signal, so a new hit shows as new energy at some frequencies over the others' decays),
    each then timed to the sample like a note's attack (`attack_times`).

    The kick and snare are told apart by where their energy rises: by 15 dB or more below 120 Hz,
    about as much as between 150 and 400 Hz, is the kick; otherwise a rise of 20 dB between 150 and
    400 Hz (a snare's body; a hat's is small) is the snare. They place the beats and bar lines
    (`grid.estimate_tempo`); librosa's tempo estimate (which had the octave right on every eval render
    and test kit) settles the beat period's octave."""
    import librosa  # imported here: only sessions whose kit is one track need it

    n_fft = 512 if sr <= 48000 else 1024  # about 10 ms: a hit 50 ms after another is its own
    hop = n_fft // 4
    # in blocks (memory bounded by a block, not by the song), each read with a margin so its edges
    # see what comes before and after; block starts are whole hops, so frame i is sample i * hop
    block, margin = int(MIX_BLOCK_S * sr) // hop * hop, 64 * hop
    blocks = [(b, max(b - margin, 0), min(b + block + margin, len(signal))) for b in range(0, len(signal), block)]
    pieces, tempi = [], []
    for b, lo, hi in blocks:
        audio = signal[lo:hi].astype(np.float32)
        power = np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=hop)) ** 2
        spectrum = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
        strength = librosa.onset.onset_strength(S=spectrum, sr=sr, n_fft=n_fft, hop_length=hop, lag=2, max_size=3)
        first = (b - lo) // hop
        pieces.append(strength[first : first + -(-(min(b + block, len(signal)) - b) // hop)])
        # the tempo: librosa's estimate frame by frame from its own onset strength at its usual hop, block
        # by block (librosa.feature.tempo over a whole song takes gigabytes); the median over the song
        usual = librosa.onset.onset_strength(y=audio, sr=sr, hop_length=TEMPO_HOP)
        tempi.append(librosa.feature.tempo(onset_envelope=usual, sr=sr, hop_length=TEMPO_HOP, aggregate=None))
    envelope = np.concatenate(pieces) if pieces else np.zeros(0)

    def frames(seconds: float) -> int:
        return max(1, int(seconds * sr / hop))

    found = librosa.onset.onset_detect(
        onset_envelope=envelope,
        sr=sr,
        hop_length=hop,
        pre_max=frames(0.03),
        post_max=frames(0.03),
        pre_avg=frames(0.1),
        post_avg=frames(0.1),
        delta=0.07,
        wait=frames(0.05),
    )
    if not len(found):
        return MixHits(track, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool), np.zeros(0, bool))
    times, low_rise, body_rise = np.zeros(len(found)), np.zeros(len(found)), np.zeros(len(found))
    for b, lo, hi in blocks:
        own = (found * hop >= b) & (found * hop < b + block)
        if not own.any():
            continue
        audio = signal[lo:hi]
        # timed above 1 kHz: every drum's attack (a beater's or stick's click, wires, a hat) is there,
        # the low drums' long decays are not
        attacks = band_filter(audio, sr, (1000.0, min(16000.0, 0.45 * sr)))
        near = found[own] * hop / sr - lo / sr
        at = attack_times(attacks, sr, near, np.full(len(near), 0.003), before_s=0.01, after_s=0.01)
        positions = np.round(at * sr).astype(np.int64)
        times[own] = at + lo / sr
        low_rise[own] = _rise_db(band_filter(audio, sr, (30.0, 120.0)), positions, sr)
        body_rise[own] = _rise_db(band_filter(audio, sr, (150.0, 400.0)), positions, sr)
    positions = np.round(times * sr).astype(np.int64)
    strengths = envelope[found].astype(float)
    # measured on the eval kits mixed to one track (dB rise, 30 ms after against before, median): kicks
    # 26 below 120 Hz and 26 at 150-400 Hz; snares 16 and 35; hats -2 and 9
    kick = (low_rise >= 15.0) & (low_rise >= body_rise - 6.0)
    snare = ~kick & (body_rise >= 20.0)
    bpm = float(np.median(np.concatenate(tempi)))
    return MixHits(track, positions + start, strengths, kick, snare, bpm)


def _rise_db(band: np.ndarray, positions: np.ndarray, sr: int) -> np.ndarray:
    """A band's energy over the 30 ms after each position against the 30 ms before it, dB."""
    energy = np.concatenate(([0.0], np.cumsum(band.astype(np.float64) ** 2)))
    span, gap, n = int(0.03 * sr), int(0.002 * sr), len(band)
    after = energy[np.clip(positions + span, 0, n)] - energy[np.clip(positions, 0, n)]
    before = energy[np.clip(positions - gap, 0, n)] - energy[np.clip(positions - gap - span, 0, n)]
    return 10 * np.log10((after + 1e-12) / (before + 1e-12))


def _close_mic_hits(task: tuple[Track, str, int, OnsetParams, Heard | None]) -> Hits:
    """One close mic's hits (a task for `map_ordered`)."""
    track, instrument, sr, params, heard = task
    audio = TrackAudio(track)  # decoded a block at a time: memory does not grow with the track
    return detect_hits(
        audio, sr=sr, instrument=instrument, track=track.name, params=params, start=track.offset, heard=heard
    )


def find_close_mic_hits(
    session: Session,
    *,
    layout: KitLayout,
    roles: dict[str, Role],
    params: OnsetParams,
    progress: Progress = quiet,
    jobs: int = 1,
    known: dict[str, Hits] | None = None,
    heard: dict[str, Heard] | None = None,
) -> dict[str, Hits]:
    """Every close mic's hits as detected on it alone, `jobs` mics at a time (same results); positions are
    samples on the session timeline. `attribute_bleed` then gives each drum's hits to its own mic. Mics
    in `known` keep the hits given there (found on a byte-identical stem at the same place); `heard`: mics'
    detection envelopes made on another pass (`Heard`)."""
    sr = session.sr or 0
    known, heard = known or {}, heard or {}
    unknown = [name for name in layout.close if name not in known]
    tasks = [(session.track(name), roles[name], sr, params, heard.get(name)) for name in unknown]
    found = map_ordered(_close_mic_hits, tasks, jobs=jobs, progress=progress, stage="Finding drum hits")
    fresh = dict(zip(unknown, found, strict=True))
    return {name: known[name] if name in known else fresh[name] for name in layout.close}


def at_played(hits: Hits, moves: np.ndarray) -> tuple[Hits, np.ndarray]:
    """`hits` where they were played (their positions less `moves`, samples per hit), sorted; and the order
    that sorts them (index into `hits` per played hit)."""
    at = hits.positions - moves
    order = np.argsort(at, kind="stable")
    return Hits(hits.track, at[order], hits.levels_db[order]), order


def bleed_where_played(
    hits: dict[str, Hits], moves: dict[str, np.ndarray], drum_of: dict[str, str], *, sr: int
) -> dict[str, Hits]:
    """`hits` attributed once more where they were played: each mic's hits less their `moves` (samples per
    hit; mics without moves stay). An edit moves a drum's hits on its close mic, not the bleed of them that
    every other mic heard where the drum was struck, up to 30 ms away: judged where they were played, the
    mics agree again. The hits kept are returned where they are."""
    placed, orders = {}, {}
    for name, h in hits.items():
        placed[name], orders[name] = at_played(h, moves.get(name, np.zeros(len(h), np.int64)))
    kept = own_hits(placed, drum_of, sr=sr)
    out = {}
    for name, h in hits.items():
        keep = np.zeros(len(h), bool)
        keep[orders[name]] = kept[name]
        out[name] = Hits(name, h.positions[keep], h.levels_db[keep])
    return out


def echoes_of_played(
    hits: dict[str, Hits], played: dict[str, Hits], drum_of: dict[str, str], *, sr: int, window_ms: float = 10.0
) -> dict[str, Hits]:
    """`hits` less those that echo an edited drum where it was played (`played`: per edited mic, its hits
    at their played positions, sorted). A drum that sets another ringing does so where it was struck:
    with half its close-mic hits moved by an edit, the rings no longer follow that mic by one delay and
    `own_hits` keeps them; judged against the played positions they are echoes again."""
    out = {}
    for a, h in hits.items():
        others = [
            Hits(b, p.positions, p.levels_db - p.loud_db)
            for b, p in played.items()
            if b != a and drum_of[a] != drum_of[b]
        ]
        keep = _not_echoes(h.positions, h.levels_db - h.loud_db, others, sr=sr, after=int(window_ms * 1e-3 * sr))
        out[a] = Hits(a, h.positions[keep], h.levels_db[keep])
    return out
