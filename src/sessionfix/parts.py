"""Pitched parts: tuning against the session's reference, out-of-tune notes, out-of-time passages.

Conventions
- f0 comes from a vectorised YIN (de Cheveigne & Kawahara 2002) on the track resampled to 16 kHz (soxr),
  10 ms hop: fast enough for 100x real time on one core, and sample-rate independent. It is made as the
  stem streams by (`PitchTrack`), so the QC's pass over a track named as pitched makes it too.
- Cents are deviations from equal temperament at the session reference (A4 in Hz), wrapped to
  [-50, 50); a note's cents is the median over its steady middle, so vibrato (symmetric), scoops
  and slides (at the ends) do not move it.
- Timing is note onsets against the drum grid, in ms (positive = late).
- Bars are 0-based, counted from the grid's first downbeat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.fft as sp_fft
import soxr
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter1d

from .findings import Finding
from .grid import STEPS_PER_BEAT, Tempo
from .onsets import attack_times
from .session import Audio, Pending

ANALYSIS_SR = 16000  # fundamentals of bass, guitar, keys and voice sit far below 8 kHz
HOP = 160  # 10 ms at 16 kHz
FMIN, FMAX = 40.0, 1000.0  # Hz: a low E on a bass (41 Hz) to a soprano's top
VIBRATO_FRAMES = 19  # 190 ms: one cycle of a slow (5.3 Hz) vibrato, averaged away to see the drift
STEP_CENTS = 40.0  # a legato step this large between two vibrato cycles starts a new note
# The lowest note of each pitched role (MIDI): a five-string bass's B0, a guitar's E2, a bass singer's
# C2; what the pitch track reads below is a strummed chord's or a noise's sub-harmonic.
LOWEST_MIDI = {"bass": 23, "guitar": 40, "vocal": 36, "keys": 21}
# A voice or a bowed line has no attack to time a whole track by: a whole-track offset is measured on
# struck and plucked parts only.
STRUCK_ROLES = ("bass", "guitar", "keys")
STEADY_CENTS = 20.0  # a note's steady part stays this close to its centre (vibrato averaged out)


@dataclass(frozen=True)
class PartsParams:
    """Thresholds of the tuning and timing checks."""

    yin_threshold: float = 0.15  # cumulative-mean-normalised difference below this is periodic
    min_note_ms: float = 80.0  # shorter voiced runs are ornaments or noise, not notes
    track_tuning_cents: float = 10.0  # a whole track this far off the reference is reported
    track_tuning_warning_cents: float = 15.0  # ...as a warning from here (an audible beat with the band)
    out_of_tune_cents: float = 20.0  # a note this far off its track's tuning is out of tune...
    out_of_tune_z: float = 4.0  # ...and this many standard errors of the performance's own spread
    min_steady_s: float = 0.15  # a note is judged for tuning on a steady part at least this long
    min_spread_cents: float = 3.0  # floor of a performance's spread (the pitch measurement's own)
    phrase_gap_s: float = 0.5  # a rest this long ends a phrase
    out_of_time_ms: float = 20.0  # a phrase whose notes sit this early or late on average...
    out_of_time_z: float = 4.0  # ...and this many standard errors of the part's own timing spread
    min_notes_out_of_time: int = 4  # fewer late notes are expression, not a phrase out of time
    min_spread_ms: float = 2.0  # floor of a part's timing spread (the attack measurement's own)
    track_offset_ms: float = 10.0  # a whole track this early or late against the kit is reported
    min_timed_notes: int = 8  # fewer struck notes than this: no timing findings


@dataclass(frozen=True)
class Note:
    start_s: float
    end_s: float
    midi: int  # nearest equal-tempered note at the session reference
    cents: float  # deviation from it at the session reference
    onset_ms: float | None  # onset against the nearest sixteenth of the grid
    steady_s: float = 0.0  # length of its steady part (see _steady_pitch); shorter than min_steady_s: not judged


@dataclass(frozen=True)
class PartAnalysis:
    track: str
    role: str  # bass, guitar, keys or vocal ("" when unknown)
    notes: tuple[Note, ...]
    offset_cents: float  # the track's own tuning against the session reference (median of its notes)
    times_s: np.ndarray  # f0 frame times
    cents: np.ndarray  # per frame, NaN unvoiced
    placement_ms: float = 0.0  # where the part's attacks usually sit against the drummer's grid, ms (+ late)


@dataclass(frozen=True)
class PartsAnalysis:
    reference_a4_hz: float
    parts: tuple[PartAnalysis, ...]
    findings: tuple[Finding, ...]


# -------------------------------------------------------------------------------------------- f0
YIN_CHUNK = 2048  # frames per batch: bounds memory on long tracks


READ_BLOCK = 1 << 18  # input samples read and resampled at a time


class PitchTrack:
    """`yin` of a mono signal of `n` samples at `sr`, fed in order a piece at a time (`feed`, then
    `result`): resampled to ANALYSIS_SR as it comes (soxr's streaming resampler, HQ, whose pieces join
    into exactly its one-shot output) and analysed YIN_CHUNK frames at a time, so memory holds a chunk,
    not the track. The values do not depend on how the signal is cut into pieces, so another pass that
    decodes the stem (the QC's) can make them."""

    def __init__(self, n: int, sr: int, *, threshold: float, hop: int = HOP) -> None:
        self.n, self.threshold, self.hop = n, threshold, hop
        self.tau_max = int(ANALYSIS_SR / FMIN) + 2
        self.width = self.tau_max  # integration window: one period of the lowest note
        length = -(-n * ANALYSIS_SR // sr)  # samples at the analysis rate
        self.n_frames = max(0, (length - self.width - self.tau_max) // hop)
        self.f0 = np.full(self.n_frames, np.nan)
        self.rms = np.zeros(self.n_frames)
        resample = sr != ANALYSIS_SR
        self.stream = soxr.ResampleStream(sr, ANALYSIS_SR, 1, dtype="float32", quality="HQ") if resample else None
        self.fed = 0  # input samples fed
        self.done = 0  # frames made
        self.resampled = Pending()  # the signal at ANALYSIS_SR, as fed and still needed

    def feed(self, samples: np.ndarray) -> None:
        """The next `samples` of the signal (mono, in order)."""
        if self.done >= self.n_frames:
            return
        self.fed += len(samples)
        block = np.asarray(samples, np.float32)
        if self.stream is not None:
            block = self.stream.resample_chunk(block, last=self.fed >= self.n)
        self.resampled.append(block)
        while self.done < self.n_frames:
            lo, hi = self.done, min(self.done + YIN_CHUNK, self.n_frames)
            first, last = lo * self.hop, (hi - 1) * self.hop + self.width + self.tau_max
            if self.resampled.end < last:
                if self.fed < self.n:
                    return
                self.resampled.append(np.zeros(last - self.resampled.end, np.float32))  # the stream's end: zeros
            x = self.resampled.span(first, last)
            self.f0[lo:hi], self.rms[lo:hi] = _yin_frames(
                x, np.arange(hi - lo), self.tau_max, self.width, self.threshold, hop=self.hop
            )
            self.done = hi
            self.resampled.drop_before(hi * self.hop)  # the next chunk's first sample

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """f0 (Hz, NaN where unvoiced or quieter than -50 dB of the loudest frame) and frame times (s);
        once the whole signal has been fed."""
        if self.done < self.n_frames:
            raise ValueError(f"the pitch track needs {self.n} samples; {self.fed} were fed")
        f0 = self.f0.copy()
        if self.n_frames:
            f0[self.rms < 10 ** (-50 / 20) * max(float(self.rms.max()), 1e-12)] = np.nan
        times = (np.arange(self.n_frames) * self.hop + self.width / 2) / ANALYSIS_SR
        return f0, times


def yin(signal: Audio, sr: int, *, threshold: float, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz, NaN where unvoiced) and frame times (s) of a mono signal, every `hop` samples at
    ANALYSIS_SR (10 ms): `PitchTrack` fed READ_BLOCK samples at a time, so memory does not grow with the
    track."""
    n = len(signal)
    track = PitchTrack(n, sr, threshold=threshold, hop=hop)
    for lo in range(0, n, READ_BLOCK):
        if track.done >= track.n_frames:
            break
        track.feed(np.asarray(signal[lo : min(lo + READ_BLOCK, n)], np.float32))
    return track.result()


def _yin_frames(
    x: np.ndarray, frames_idx: np.ndarray, tau_max: int, width: int, threshold: float, *, hop: int = HOP
) -> tuple[np.ndarray, np.ndarray]:
    """YIN f0 and RMS (about the frame's mean) of the frames starting at frames_idx * hop."""
    n = len(frames_idx)
    # the difference function does not change with a constant, but in single precision a DC offset swamps
    # it: a stem's rests, its offset alone, read as random pitches (a converter's -40 dBFS over a -110 dBFS
    # noise floor leaves the noise below the rounding); so it is taken about the mean of `x`
    mean = np.float32(np.mean(x, dtype=np.float64))
    x = x - mean
    tau_min = int(ANALYSIS_SR / FMAX)
    length = width + tau_max
    starts = frames_idx * hop  # each frame's first sample in x
    # r_t(tau) for tau < tau_max reaches index width - 1 + tau_max - 1 of the frame: no circular wrap at this length
    n_fft = sp_fft.next_fast_len(length, real=True)
    # the frames and their heads written into zero-padded buffers once (rfft would pad a copy of each)
    padded = np.zeros((n, n_fft), np.float32)  # single precision: a dip's depth is >1e-4 of the energy
    padded[:, :length] = sliding_window_view(x, length)[starts]
    spectrum = sp_fft.rfft(padded, axis=1)
    padded[:, width:] = 0.0  # now the heads
    heads = sp_fft.rfft(padded, axis=1)
    head_sums = heads[:, 0].real.astype(np.float64)  # bin 0: the sum of each frame's window
    spectrum *= np.conj(heads)
    cross = sp_fft.irfft(spectrum, n_fft, axis=1)[:, :tau_max]  # r_t(tau) of the window
    # the energy of the window at every lag: one running sum over the signal, not one per frame
    running = np.concatenate(([0.0], np.cumsum(np.square(x, dtype=np.float64))))
    windowed = (running[width:] - running[:-width]).astype(np.float32)  # energy of x[s : s + width]
    difference = sliding_window_view(windowed, tau_max)[starts]  # a copy (fancy index)
    energy0 = difference[:, 0].copy()
    # each frame's level about its own mean: a DC offset is no sound (a stretch of it alone is not a note)
    level = np.maximum(running[starts + width] - running[starts] - head_sums**2 / width, 0.0)
    difference += energy0[:, None]
    cross *= 2.0
    difference -= cross
    difference[:, 0] = 0.0
    cumulative = np.cumsum(difference[:, 1:], axis=1)
    cumulative /= np.arange(1, tau_max)
    np.maximum(cumulative, 1e-12, out=cumulative)
    normalised = difference
    normalised[:, 1:] /= cumulative
    normalised[:, 0] = 1.0
    below = normalised[:, tau_min:] < threshold
    voiced = below.any(axis=1)
    first = np.argmax(below, axis=1) + tau_min
    # from the first lag under the threshold, walk down to the bottom of that dip
    rising = np.zeros((n, tau_max), dtype=bool)
    rising[:, :-1] = normalised[:, 1:] >= normalised[:, :-1]
    rising[:, -1] = True
    rising &= np.arange(tau_max)[None, :] >= first[:, None]
    t = np.argmax(rising, axis=1)
    rows = np.arange(n)
    tc = np.clip(t, 1, tau_max - 2)
    a, b, c = normalised[rows, tc - 1], normalised[rows, tc], normalised[rows, tc + 1]
    # a dip whose bottom lies below tau_min (its lag at the threshold still falling from there) is a
    # period shorter than FMAX's: not a note; the parabola through it would place f0 anywhere, even below 0
    inside = voiced & (t >= 1) & (t < tau_max - 1) & (a >= b) & (c >= b)
    curvature = a - 2 * b + c
    shift = np.divide(0.5 * (a - c), curvature, out=np.zeros(n), where=curvature > 0)
    f0 = np.where(inside, ANALYSIS_SR / (tc + shift), np.nan)
    return f0, np.sqrt(level / width)


# ----------------------------------------------------------------------------------------- notes
def _wrap(cents: np.ndarray | float) -> np.ndarray:
    return (np.asarray(cents) + 50.0) % 100.0 - 50.0


def segment_notes(f0: np.ndarray, times: np.ndarray, *, a4_hz: float, min_note_ms: float) -> list[tuple[int, int]]:
    """[start, end) frame ranges of notes: voiced runs split where the nearest semitone changes."""
    midi = (69 + 12 * np.log2(f0 / a4_hz)).tolist()
    notes: list[tuple[int, int]] = []
    start: int | None = None
    semitone = 0.0
    min_frames = max(2, int(min_note_ms / 10))
    for i in range(len(midi) + 1):
        voiced = i < len(midi) and midi[i] == midi[i]  # NaN is unvoiced
        if voiced and start is not None and i - start <= 5:
            # the note's semitone settles over its first 50 ms, then holds (a slide away ends the note)
            semitone = sorted(round(m) for m in midi[start:i])[(i - start) // 2]
        same = voiced and start is not None and abs(midi[i] - semitone) < 0.75
        if start is not None and not same:
            if i - start >= min_frames:
                notes.append((start, i))
            start = None
        if voiced and start is None:
            start, semitone = i, round(midi[i])
    return notes


def split_at_steps(midi: np.ndarray, offset: int, *, min_frames: int) -> list[tuple[int, int]]:
    """A note's frames (fractional MIDI) split where the pitch steps by STEP_CENTS or more (a new
    note sung legato, less than the semitone segment_notes splits at): the step is the largest
    difference between the mean pitch over one vibrato cycle after a frame and the one before it, so a
    vibrato does not count. [start, end) frame ranges, shifted by `offset`."""
    n, w = len(midi), VIBRATO_FRAMES
    if n < 2 * max(w, min_frames):
        return [(offset, offset + n)]
    sums = np.concatenate(([0.0], np.cumsum(midi)))
    at = np.arange(max(w, min_frames), n - max(w, min_frames) + 1)
    step = (sums[at + w] - sums[at]) / w - (sums[at] - sums[at - w]) / w
    k = int(np.argmax(np.abs(step)))
    if abs(step[k]) * 100 < STEP_CENTS:
        return [(offset, offset + n)]
    cut = int(at[k])
    return split_at_steps(midi[:cut], offset, min_frames=min_frames) + split_at_steps(
        midi[cut:], offset + cut, min_frames=min_frames
    )


def _steady_pitch(f0: np.ndarray, a4_hz: float) -> tuple[float, float]:
    """A note's pitch (fractional MIDI at `a4_hz`) and the length of its steady part (seconds).

    The steady part is the longest run of frames where the pitch averaged over one vibrato cycle
    (190 ms) stays within STEADY_CENTS of the note's centre: scoops, falls, releases and glides lie
    outside it. The pitch is the midpoint of the 10th and 90th percentiles over that run (the centre
    of a vibrato even over part of a cycle, where a median or mean is pulled to one side)."""
    midi = 69 + 12 * np.log2(f0 / a4_hz)
    smooth = uniform_filter1d(midi, size=min(VIBRATO_FRAMES, len(midi)), mode="nearest")
    middle = smooth[int(0.2 * len(midi)) : max(int(0.8 * len(midi)), int(0.2 * len(midi)) + 1)]
    steady = np.abs(smooth - _quantile(np.sort(middle), 0.5)) * 100 <= STEADY_CENTS
    # the longest run of steady frames (the first of the longest)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], steady.view(np.int8), [0]))))
    if not len(edges):
        return _quantile(np.sort(midi), 0.5), 0.0
    starts, lengths = edges[::2], edges[1::2] - edges[::2]
    best = int(np.argmax(lengths))
    ordered = np.sort(midi[starts[best] : starts[best] + lengths[best]])
    return 0.5 * (_quantile(ordered, 0.1) + _quantile(ordered, 0.9)), int(lengths[best]) * HOP / ANALYSIS_SR


def _quantile(ordered: np.ndarray, q: float) -> float:
    """np.quantile's default (linear) of values already sorted, without its overhead (per note)."""
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return float(ordered[below] + (ordered[above] - ordered[below]) * (position - below))


def analyse_part(
    signal: Audio,
    *,
    sr: int,
    track: str,
    a4_hz: float,
    tempo: Tempo | None,
    params: PartsParams,
    start_s: float = 0.0,
    role: str = "",
    tracked: tuple[np.ndarray, np.ndarray] | None = None,
) -> PartAnalysis:
    """Notes, per-frame cents and the track's own tuning offset for one pitched track.

    start_s : where `signal` starts on the session timeline (the stem's BWF offset), seconds.
    role : the track's role; below its lowest note (LOWEST_MIDI) nothing is a note.
    tracked : `yin` of `signal` (f0, frame times) as made on another pass (`PitchTrack`); None: made here.
    """
    f0, file_times = tracked if tracked is not None else yin(signal, sr, threshold=params.yin_threshold)
    min_frames = max(2, int(params.min_note_ms / 10))
    segments: list[tuple[int, int, bool]] = []  # frames [lo, hi), and whether the note is struck (not legato)
    for lo, hi in segment_notes(f0, file_times, a4_hz=a4_hz, min_note_ms=params.min_note_ms):
        pieces = split_at_steps(69 + 12 * np.log2(f0[lo:hi] / a4_hz), lo, min_frames=min_frames)
        segments += [(p_lo, p_hi, k == 0) for k, (p_lo, p_hi) in enumerate(pieces)]
    voiced_s = np.array([float(file_times[lo]) for lo, _, _ in segments])
    periods_s = np.array([1.0 / float(np.median(f0[lo : min(lo + 5, hi)])) for lo, hi, _ in segments])
    # the attack: in the 120 ms before the pitch track turned voiced (it must first hold steady
    # periods) or up to 20 ms after it; a note without one (a legato change) starts where it turned voiced
    attacks_s = attack_times(signal, sr, voiced_s, periods_s, before_s=0.12, after_s=0.02) + start_s
    times = file_times + start_s
    notes = []
    for (lo, hi, struck), attack_s, voiced in zip(segments, attacks_s, voiced_s + start_s, strict=True):
        pitch, steady_s = _steady_pitch(f0[lo:hi], a4_hz)
        midi = int(np.round(pitch))
        if midi < LOWEST_MIDI.get(role, 0):
            continue  # below the instrument: a chord's or a noise's sub-harmonic, not a note
        # the onset against the grid: only for a struck note whose attack was found (onset_ms is set later)
        timed = struck and attack_s != voiced
        notes.append(
            Note(
                start_s=float(attack_s if struck else voiced),
                end_s=float(times[hi - 1]),
                midi=midi,
                cents=float((pitch - midi) * 100),
                onset_ms=0.0 if timed else None,
                steady_s=steady_s,
            )
        )
    # Timing: each struck note's attack against the nearest sixteenth of the drummer's grid. The
    # part's placement (where its notes usually sit, a circular mean then a median) is what a
    # whole-track offset reports; a note's onset_ms is its distance from the grid after that placement,
    # against its position's habit (`_timing_errors_s`: a swung part's off-beats are late by design).
    placement = 0.0
    if tempo is not None:
        struck_s = np.array([n.start_s for n in notes if n.onset_ms is not None])
        placement = _usual_placement(struck_s, tempo) if len(struck_s) else 0.0
        starts = np.array([n.start_s - placement for n in notes])
        errors_ms = _timing_errors_s(starts, struck_s - placement, tempo) * 1e3
        notes = [
            replace(n, onset_ms=float(error_ms)) if n.onset_ms is not None else n
            for n, error_ms in zip(notes, errors_ms, strict=True)
        ]
    offset = track_tuning_cents(np.array([n.cents for n in notes if n.steady_s >= params.min_steady_s]))
    cents_track = _wrap(1200 * np.log2(f0 / a4_hz))
    return PartAnalysis(
        track=track,
        role=role,
        notes=tuple(notes),
        offset_cents=offset,
        times_s=times,
        cents=cents_track,
        placement_ms=placement * 1e3,
    )


def track_tuning_cents(note_cents: np.ndarray) -> float:
    """A track's own tuning from its notes' cents (each in [-50, 50) against the nearest semitone):
    a circular mean over the 100-cent period, so a track tuned near a quarter tone, whose notes wrap
    between +49 and -49, reads +-50 and not 0; then the median around it, so a flat phrase does not
    pull the tuning. Cents, in [-50, 50)."""
    cents = np.asarray(note_cents, float)
    cents = cents[np.isfinite(cents)]
    if cents.size == 0:
        return 0.0
    mean = float(np.angle(np.mean(np.exp(2j * np.pi * cents / 100.0))) / (2 * np.pi) * 100.0)
    return float(_wrap(mean + float(np.median(_wrap(cents - mean)))))


MIN_FEEL_NOTES = 8  # notes on one sixteenth of the beat that may set its habitual place...
FEEL_BARS_SHARE = 0.5  # ...if they come in this share of the bars the part plays in (a habit, not a phrase)


def _timing_errors_s(starts_s: np.ndarray, struck_s: np.ndarray, tempo: Tempo) -> np.ndarray:
    """Per time in `starts_s`, its distance (s) from the nearest place in the beat where the part's struck
    notes (`struck_s`) habitually sit: each sixteenth of the beat (on the beat, "e", "and", "a") at the
    grid line, or where the part's notes on it usually are when they come in most bars.

    Swing moves a part's off-beats by design, the same way in every bar (a light swing's "and" 50 ms
    late at 120 bpm, a shuffle's at two thirds of the beat); a late phrase moves a few bars. A note is
    early or late against its own position's habit. Limit: a note dragged more than half way from a
    swung "and" to the straight "a" is read against the "a"."""
    if not len(starts_s):
        return np.zeros(0)
    struck_index = tempo.beat_index(struck_s)
    position = np.round(struck_index * STEPS_PER_BEAT).astype(int) % STEPS_PER_BEAT
    errors = tempo.grid_error_s(struck_s)
    bars = np.array([tempo.bar_of(float(t)) for t in struck_s])
    played = len(np.unique(bars))
    places = np.arange(STEPS_PER_BEAT + 1) / STEPS_PER_BEAT  # in beats from the beat before; the next beat too
    for k in range(STEPS_PER_BEAT):
        on = position == k
        if on.sum() >= MIN_FEEL_NOTES and len(np.unique(bars[on])) >= FEEL_BARS_SHARE * played:
            places[k] += float(np.median(errors[on])) / tempo.beat_s
    places[-1] = 1.0 + places[0]
    index = tempo.beat_index(starts_s)
    whole = np.floor(index)
    distances = starts_s[:, None] - tempo.time_of(whole[:, None] + places[None, :])
    return distances[np.arange(len(starts_s)), np.argmin(np.abs(distances), axis=1)]


ON_BEAT_SHARE = 0.25  # a part with this share of its notes on the beat is placed by those notes...
MIN_ON_BEAT = 8  # ...and at least this many


def _usual_placement(starts_s: np.ndarray, tempo: Tempo) -> float:
    """Where the part's notes usually sit against the drummer's grid, seconds (+ late).

    Measured on the coarsest grid the part plays on (quarters, eighths or sixteenths: the coarsest
    whose circular concentration of note phases is 90 % of the sixteenths'), so a bass on quarter notes
    45 ms late at 168 bpm is not read 44 ms early against the next sixteenth; a circular mean on it,
    then the median around it, so a dragging phrase does not pull the part's usual placement.

    A finer grid reads the part instead where its offset there is under half the coarser grid's: an
    offbeat bass on every "and" is on the eighths, not half a beat late on the quarters. Of two
    readings the smaller is the safer (a repair slides the track by it), and a latency is ms, not a
    beat's fraction; the coarser one is kept where the two are alike (the 168 bpm bass above).

    A latency delays every note alike; swing delays only the off-beats (a shuffle's "and" sits at two
    thirds of the beat, 42 ms before the straight grid's "a" at 120 bpm). Where the part plays on the
    beat often enough (ON_BEAT_SHARE of its notes, and MIN_ON_BEAT), those notes alone are read."""
    beat_error = tempo.grid_error_s(starts_s, division=1)
    # within a sixteenth of the beat: a latency of tens of ms stays inside, a swung "and" (past half the
    # beat) outside; a sixteenth's "e" or "a" that falls inside is placed on the sixteenths below, as before
    on_beat = np.abs(beat_error) < tempo.beat_s / 4
    if on_beat.sum() >= max(MIN_ON_BEAT, ON_BEAT_SHARE * len(starts_s)):
        starts_s = starts_s[on_beat]

    def phases(division: int) -> np.ndarray:
        return np.exp(2j * np.pi * tempo.grid_error_s(starts_s, division=division) / (tempo.beat_s / division))

    def offset(division: int) -> float:
        return float(np.angle(np.mean(phases(division))) / (2 * np.pi) * tempo.beat_s / division)

    concentration = {d: float(np.abs(np.mean(phases(d)))) for d in (1, 2, 4)}
    division = next(d for d in (1, 2, 4) if concentration[d] >= 0.9 * concentration[4])
    mean = offset(division)
    for finer in (d for d in (2, 4) if d > division):
        if abs(offset(finer)) < abs(mean) / 2:
            division, mean = finer, offset(finer)
    return mean + float(np.median(tempo.grid_error_s(starts_s - mean, division=division)))


# ---------------------------------------------------------------------------------------- checks
def _bars(tempo: Tempo | None, start_s: float, end_s: float) -> str:
    if tempo is None:
        return f"at {start_s:.1f}-{end_s:.1f} s"
    return f"in {tempo.bar_span(start_s, end_s)}"


def _track_tuning_finding(part: PartAnalysis, params: PartsParams) -> list[Finding]:
    if abs(part.offset_cents) < params.track_tuning_cents:
        return []
    flat = "flat" if part.offset_cents < 0 else "sharp"
    return [
        Finding(
            kind="track_tuning",
            severity="warning" if abs(part.offset_cents) >= params.track_tuning_warning_cents else "info",
            track=part.track,
            value=round(part.offset_cents, 1),
            unit="cents",
            message=f"{_stem(part.track)} is tuned {abs(part.offset_cents):.0f} cents {flat} of the session "
            "reference; retune the whole track",
        )
    ]


def _stem(track: str) -> str:
    return track.rsplit(".", 1)[0]


def intended_deviations(
    cents: np.ndarray, midi: np.ndarray, phrase: np.ndarray, weight: np.ndarray, *, context: int = 3
) -> np.ndarray:
    """Each judged note's cents against the note it was meant to be.

    cents : off the track's tuning, wrapped to [-50, 50) around the nearest semitone `midi`.
    weight : how long each note is heard (s): the track's pitch set is counted from the notes read
        clearly (within 25 cents of a semitone).
    A note 30+ cents off may have been meant as the semitone on its other side (a push past 50 cents).
    It is read on that side when that pitch class is in the track's pitch set and its nearest is not
    (the song's key decides; a pitch class is in the set when it is heard at least a tenth as long as
    the most heard one); when both or neither are, when the notes around it in its phrase sit 20+ cents off on
    that side together (a flat phrase's note at -52 reads -52, not +48). Otherwise the nearest
    semitone is the intended note. The sign is kept either way."""
    cents = cents.astype(float)
    clear = np.abs(cents) < 25
    heard = np.bincount(np.mod(midi[clear], 12), weights=weight[clear], minlength=12)
    in_set = heard >= 0.1 * heard.max() if heard.any() else np.ones(12, dtype=bool)
    out = cents.copy()
    for i in range(len(cents)):
        if abs(cents[i]) < 30:
            continue
        other_side = -np.sign(cents[i])
        near, other = in_set[midi[i] % 12], in_set[(midi[i] - int(other_side)) % 12]
        if near != other:
            out[i] += 100 * other_side * other
            continue
        lo, hi = max(0, i - context), min(len(cents), i + context + 1)
        around = [j for j in range(lo, hi) if j != i and phrase[j] == phrase[i]]
        if around:
            mean = float(np.angle(np.mean(np.exp(2j * np.pi * cents[around] / 100))) / (2 * np.pi) * 100)
            if abs(mean) >= 20.0 and np.sign(mean) == other_side:
                out[i] = cents[i] + 100 * other_side
    return out


def robust_spread(values: np.ndarray, *, floor: float) -> float:
    """The robust standard deviation of `values` (1.4826 x their median absolute deviation), at least
    `floor` (the measurement's own precision)."""
    return max(1.4826 * float(np.median(np.abs(values - np.median(values)))), floor)


def off_runs(
    deviations: np.ndarray, phrase: np.ndarray, *, at_least: float, z: float, min_spread: float, min_notes: int = 1
) -> list[tuple[int, int]]:
    """[start, end) runs of notes that sit off together, given each note's deviation (cents from its
    intended pitch, or ms from the grid) and its phrase number.

    The performance's usual spread sigma is the robust standard deviation (1.4826 x MAD) of all its
    notes, at least `min_spread`. A run within one phrase is off when its mean is at least `at_least`
    off and `z` standard errors (sigma / sqrt(n)) from 0: one note must stand out from the player's own
    scatter, a phrase of n notes only by 1/sqrt(n) of it; a run holds at least `min_notes`. The
    strongest run is taken first, extended over the neighbours that sit nearer to it than to 0, and so
    on."""
    n = len(deviations)
    if n == 0:
        return []
    sigma = robust_spread(deviations, floor=min_spread)
    free = np.ones(n, dtype=bool)
    runs: list[tuple[int, int]] = []
    # a note counts at most twice `at_least`: one wild note (a misread attack) does not make a run
    sums = np.concatenate(([0.0], np.cumsum(np.clip(deviations, -2 * at_least, 2 * at_least))))
    while True:
        best = _strongest_run(sums, free, phrase, sigma=sigma, at_least=at_least, z=z, min_notes=min_notes)
        if best is None:
            return sorted(runs)
        lo, hi = best
        mean = (sums[hi] - sums[lo]) / (hi - lo)
        while (
            lo > 0
            and free[lo - 1]
            and phrase[lo - 1] == phrase[lo]
            and abs(deviations[lo - 1] - mean) < abs(deviations[lo - 1])
        ):
            lo -= 1
        while hi < n and free[hi] and phrase[hi] == phrase[hi - 1] and abs(deviations[hi] - mean) < abs(deviations[hi]):
            hi += 1
        free[lo:hi] = False
        runs.append((lo, hi))


MAX_RUN_NOTES = 512  # the strongest run is sought among runs this long at most (then extended)


def _strongest_run(
    sums: np.ndarray, free: np.ndarray, phrase: np.ndarray, *, sigma: float, at_least: float, z: float, min_notes: int
) -> tuple[int, int] | None:
    """The [start, end) run of free notes in one phrase with the highest score |sum| / (sigma sqrt(n)),
    at least `z`, among those of `min_notes` or more whose mean is `at_least` off (see off_runs); on a
    tie, the last. `sums` are the cumulative deviations (sums[0] = 0)."""
    n = len(free)
    best, best_score = None, z
    start = 0
    while start < n:
        if not free[start]:
            start += 1
            continue
        end = start
        while end < n and free[end] and phrase[end] == phrase[start]:
            end += 1
        los = np.arange(start, end)
        for count in range(max(min_notes, 1), min(end - start, MAX_RUN_NOTES) + 1):
            lo = los[: end - start - count + 1]
            total = np.abs(sums[lo + count] - sums[lo])
            score = total / (sigma * np.sqrt(count))
            ok = (total >= at_least * count) & (score >= best_score)
            if ok.any():
                top = float(score[ok].max())
                last = int(np.flatnonzero(ok & (score == top))[-1])
                best, best_score = (int(lo[last]), int(lo[last]) + count), top
        start = end
    return best


def _phrase_groups(runs: list[tuple[int, int]], phrase: np.ndarray) -> list[tuple[int, int]]:
    """Runs that follow each other in one phrase (no judged note between them) as one group."""
    groups: list[tuple[int, int]] = []
    for lo, hi in sorted(runs):
        if groups and groups[-1][1] == lo and phrase[lo] == phrase[lo - 1]:
            groups[-1] = (groups[-1][0], hi)
        else:
            groups.append((lo, hi))
    return groups


def _phrases(notes: list[Note], gap_s: float) -> np.ndarray:
    """Phrase number of each note: a rest of `gap_s` or more starts a new phrase."""
    starts = np.array([n.start_s for n in notes])
    ends = np.array([n.end_s for n in notes])
    return np.concatenate(([0], np.cumsum(starts[1:] - ends[:-1] >= gap_s))).astype(int)


def _tuning_findings(part: PartAnalysis, tempo: Tempo | None, params: PartsParams) -> list[Finding]:
    out = _track_tuning_finding(part, params)
    judged = [n for n in part.notes if n.steady_s >= params.min_steady_s]
    if not judged:
        return out
    phrase = _phrases(judged, params.phrase_gap_s)
    off = np.array([n.midi + (n.cents - part.offset_cents) / 100 for n in judged])  # semitones, own tuning
    nearest = np.round(off).astype(int)
    deviations = intended_deviations((off - nearest) * 100, nearest, phrase, np.array([n.steady_s for n in judged]))
    runs = off_runs(
        deviations,
        phrase,
        at_least=params.out_of_tune_cents,
        z=params.out_of_tune_z,
        min_spread=params.min_spread_cents,
    )
    for lo, hi in _phrase_groups(runs, phrase):
        notes, devs = judged[lo:hi], deviations[lo:hi].copy()
        # a group's notes 40+ cents off on the other side than most of them were pushed past 50 with them
        side = np.sign(np.sum(np.sign(devs))) or 1.0
        devs = np.where((np.sign(devs) == -side) & (np.abs(devs) >= 40), devs + 100 * side, devs)
        value = float(np.median(devs))
        direction = "sharp" if value > 0 else "flat"
        listed = ", ".join(f"{d:+.0f}" for d in devs[:8]) + (", ..." if len(devs) > 8 else "")
        count = f"{len(notes)} note{'s' if len(notes) > 1 else ''}"
        out.append(
            Finding(
                kind="out_of_tune",
                severity="warning",
                track=part.track,
                start_s=round(notes[0].start_s, 3),
                end_s=round(notes[-1].end_s, 3),
                value=round(value, 1),
                unit="cents",
                count=len(notes),
                message=f"{_stem(part.track)}: {count} {abs(value):.0f} cents {direction} "
                f"{_bars(tempo, notes[0].start_s, notes[-1].start_s)} ({listed} cents); pitch-correct or replay",
            )
        )
    return out


def _timing_findings(part: PartAnalysis, tempo: Tempo | None, params: PartsParams) -> list[Finding]:
    """A whole-track offset against the kit, and phrases that sit off the band (see `off_runs`)."""
    timed = [n for n in part.notes if n.onset_ms is not None]
    if tempo is None or len(timed) < params.min_timed_notes:
        return []
    name = _stem(part.track)
    onsets = np.array([n.onset_ms for n in timed], float)
    sigma = robust_spread(onsets, floor=params.min_spread_ms)
    out = []
    placement = part.placement_ms
    # the whole track: its placement is the median of many notes, so its standard error is small; it
    # must be at least track_offset_ms and clearly more than that error
    standard_error = sigma / np.sqrt(len(timed))
    clear = abs(placement) >= params.track_offset_ms and abs(placement) >= params.out_of_time_z * standard_error
    if part.role in STRUCK_ROLES and clear:
        late = placement > 0
        out.append(
            Finding(
                kind="track_offset",
                severity="warning",
                track=part.track,
                value=round(placement, 1),
                unit="ms",
                message=f"{name} sits {abs(placement):.0f} ms {'late' if late else 'early'} against the kit for the "
                f"whole song; slide the track {abs(placement):.0f} ms {'earlier' if late else 'later'}",
            )
        )
    phrase = _phrases(timed, params.phrase_gap_s)
    runs = off_runs(
        onsets,
        phrase,
        at_least=params.out_of_time_ms,
        min_notes=params.min_notes_out_of_time,
        z=params.out_of_time_z,
        min_spread=params.min_spread_ms,
    )
    for lo, hi in runs:
        value = float(np.median(onsets[lo:hi]))
        first_bar, last_bar = tempo.bar_of(timed[lo].start_s), tempo.bar_of(timed[hi - 1].start_s)
        start_s, end_s = tempo.bar_start_s(first_bar), tempo.bar_start_s(last_bar + 1)
        out.append(
            Finding(
                kind="out_of_time",
                severity="warning",
                track=part.track,
                start_s=round(start_s, 3),
                end_s=round(end_s, 3),
                value=round(value, 1),
                unit="ms",
                count=last_bar - first_bar + 1,
                message=f"{name}: {hi - lo} notes sit {abs(value):.0f} ms {'late' if value > 0 else 'early'} "
                f"{_bars(tempo, start_s, end_s - 1e-6)}; re-time the phrase",
            )
        )
    return out


def session_reference_cents(offsets: list[float], *, within: float) -> float:
    """The session reference (cents from A440) where the pitched tracks agree: the mean of the largest
    group of track tunings within `within` cents of one of them (ties: the group nearest A440); the
    tracks outside it are what gets reported. 0 (A440) with fewer than two tracks."""
    if len(offsets) < 2:
        return 0.0
    values = np.asarray(offsets, float)
    groups = [values[np.abs(_wrap(values - o)) < within] for o in values]
    best = max(groups, key=lambda g: (len(g), -abs(float(np.mean(g)))))
    return float(np.mean(best)) if len(best) >= 2 else 0.0


def _retuned(note: Note, reference_cents: float) -> Note:
    """The note against a reference `reference_cents` above A440 (its nearest MIDI note may change)."""
    pitch = note.midi + (note.cents - reference_cents) / 100
    return replace(note, midi=int(np.round(pitch)), cents=float((pitch - np.round(pitch)) * 100))


def combine_parts(first: list[PartAnalysis], *, tempo: Tempo | None, params: PartsParams) -> PartsAnalysis:
    """The session reference from parts analysed at A4 = 440 Hz, every part re-expressed against it,
    and the findings."""
    offsets = [p.offset_cents for p in first if p.notes]
    reference_cents = session_reference_cents(offsets, within=params.track_tuning_cents)
    a4 = 440.0 * 2 ** (reference_cents / 1200)
    parts = tuple(
        replace(
            p,
            notes=tuple(_retuned(n, reference_cents) for n in p.notes),
            offset_cents=float(_wrap(p.offset_cents - reference_cents)),
            cents=_wrap(p.cents - reference_cents),
        )
        for p in first
    )
    findings = [f for p in parts for f in _tuning_findings(p, tempo, params) + _timing_findings(p, tempo, params)]
    return PartsAnalysis(reference_a4_hz=round(a4, 2), parts=parts, findings=tuple(findings))
