"""Technical QC of a session: one streamed pass per file, then checks across files.

Conventions
- Each file is decoded once, in blocks (`session.iter_blocks`); memory is a block plus a coarse
  envelope per track (one float per `ENVELOPE_HOP` samples), whatever the session's size.
- Positions inside this module are samples in the file; findings convert to seconds on the session
  timeline (adding the stem's BWF offset).
- Levels: linear full scale (1.0 = 0 dBFS) unless the name says `_dbfs`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
from scipy.signal import find_peaks

from .findings import Finding, Severity
from .onsets import BandEnvelope, Heard, Listening
from .parallel import map_outcomes
from .parts import PitchTrack
from .progress import Progress, quiet
from .roles import SAME_DRUM_DB, KitLayout, is_underside
from .session import BLOCK_FRAMES, Session, Track, iter_blocks, read_windows, sample_format

T = TypeVar("T")
ENVELOPE_HOP = 256  # samples per envelope value: 5.3 ms at 48 kHz, finer than any drum attack

# Bits of resolution per libsndfile subtype, to place "full scale" one LSB-ish below 1.0.
SUBTYPE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


@dataclass(frozen=True)
class QcParams:
    """Thresholds of the technical checks. Override any of them under [qc] in sessionfix.toml, within
    QC_RANGES."""

    clip_run_samples: int = 3  # consecutive full-scale samples that make a clip; 1 or 2 can be a clean peak
    clip_merge_s: float = 1.0  # clips closer than this are one clipped passage
    max_clip_passages: int = 20  # passages listed per track before the rest are summarised
    dc_offset_dbfs: float = -60.0  # mean level above this is a DC offset (converter faults sit near -40)
    silent_dbfs: float = -80.0  # peak below this: the track holds nothing but noise floor
    length_tolerance_ms: float = 1.0  # stems ending within this of each other are "the same length"
    polarity_hits: int = 24  # loudest hits compared when checking polarity
    polarity_max_lag_ms: float = 3.0  # close mics on one drum sit within ~1 m of each other
    polarity_min_agreement: float = 0.75  # share of hits that must agree before polarity is reported
    polarity_min_correlation: float = 0.3  # hits whose |correlation| is below this carry no vote


# What a setting may be set to (inclusive): beyond these the checks mean nothing or cost without bound.
QC_RANGES: dict[str, tuple[float, float]] = {
    "clip_run_samples": (1, 10_000),
    "clip_merge_s": (0.0, 600.0),
    "max_clip_passages": (1, 10_000),
    "dc_offset_dbfs": (-140.0, 0.0),
    "silent_dbfs": (-200.0, 0.0),
    "length_tolerance_ms": (0.0, 60_000.0),
    "polarity_hits": (3, 1_000),
    "polarity_max_lag_ms": (0.1, 20.0),  # ~7 m of air: two mics on one drum are never farther apart
    "polarity_min_agreement": (0.5, 1.0),
    "polarity_min_correlation": (0.0, 1.0),
}


@dataclass(frozen=True)
class TrackStats:
    """What one streamed pass learns about one file. Positions are samples in the file."""

    name: str
    peak: float  # max |x| over all channels, linear
    dc: tuple[float, ...]  # per channel, median of 1 s window means, linear
    clip_runs: tuple[tuple[int, int], ...]  # [start, end) of each run of full-scale samples
    identical_channels: bool  # a multichannel file whose channels are all the same (False for mono)
    envelope: np.ndarray  # max |x| of the channel mean per ENVELOPE_HOP samples, float32
    invalid_runs: tuple[tuple[int, int], ...] = ()  # [start, end) of each run of NaN/infinite samples
    invalid_frames: int = 0  # frames holding a NaN or an infinity (the other measures read them as 0)
    heard: Heard | None = None  # a close mic's detection envelope, made on this pass (`measure_track`)
    pitch: tuple[np.ndarray, np.ndarray] | None = None  # a pitched track's f0 and frame times (`parts.yin`), ditto

    @property
    def peak_dbfs(self) -> float:
        return float(20 * np.log10(self.peak)) if self.peak > 0 else float("-inf")

    @property
    def dc_dbfs(self) -> float:
        """The DC offset of the worst channel, dBFS (-inf for none)."""
        worst = max((abs(d) for d in self.dc), default=0.0)
        return float(20 * np.log10(worst)) if worst > 0 else float("-inf")


@dataclass(frozen=True)
class QcResult:
    stats: dict[str, TrackStats]  # per readable track name
    findings: tuple[Finding, ...]


def full_scale_threshold(subtype: str) -> float:
    """Smallest |x| counted as full scale: within two LSBs of 1.0 for PCM, 1.0 for float files."""
    bits = SUBTYPE_BITS.get(subtype)
    return float(np.float32(1.0 - 2.0 ** (1 - bits))) if bits else 1.0


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of each run of True in a boolean vector."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    return edges[0::2], edges[1::2]


def _dc_offset(window_sums: np.ndarray, frames: int, sr: int) -> tuple[float, ...]:
    """Per channel, the median over 1 s windows of the window's mean.

    A converter's DC offset is in every window; the mean of music over a short file is not (a
    decaying bass note has a mean of its own), so the median keeps one and ignores the other.
    """
    counts = np.clip(frames - np.arange(len(window_sums)) * sr, 0, sr).astype(float)
    used = counts > 0
    return tuple(np.median(window_sums[used] / counts[used, None], axis=0).tolist())


def measure_track(
    track: Track,
    *,
    params: QcParams,
    block_frames: int = BLOCK_FRAMES,
    listening: Listening | None = None,
    yin_threshold: float | None = None,
) -> TrackStats:
    """Stream one file once and collect everything the checks need; with `listening`, the close mic's
    detection envelope too (`TrackStats.heard`: the hit detection then need not decode the stem again);
    with `yin_threshold`, a pitched track's f0 (`TrackStats.pitch`: likewise for the parts' analysis).

    Raises `RuntimeError`/`OSError` when the file cannot be decoded to its declared length.
    """
    detection = BandEnvelope(track.frames, track.sr, listening) if listening is not None else None
    pitch = PitchTrack(track.frames, track.sr, threshold=yin_threshold) if yin_threshold is not None else None
    threshold = full_scale_threshold(track.subtype)
    can_hold_nan = track.subtype not in SUBTYPE_BITS  # a float file can; PCM cannot
    peak = 0.0
    window_sums = np.zeros((-(-track.frames // track.sr) + 1, track.channels))  # per 1 s of file
    identical = track.channels > 1
    runs: list[tuple[int, int]] = []
    open_run: int | None = None  # start of a full-scale run still going at the end of the last block
    hops: list[np.ndarray] = []  # envelope pieces
    pending = np.zeros(0, dtype=np.float32)
    pos = 0
    invalid: list[tuple[int, int]] = []
    invalid_frames = 0
    for block in iter_blocks(track, block_frames=block_frames):
        if can_hold_nan and not np.isfinite(block).all():  # NaN or infinity: count them, measure the rest as 0
            finite = np.isfinite(block).all(axis=1)
            starts, ends = _runs(~finite)
            invalid += [(pos + int(a), pos + int(b)) for a, b in zip(starts, ends, strict=True)]
            invalid_frames += int(np.sum(~finite))
            block = np.where(np.isfinite(block), block, 0.0).astype(np.float32)
        magnitude = np.abs(block) if track.channels > 1 else np.abs(block[:, 0])
        block_peak = float(magnitude.max())
        peak = max(peak, block_peak)
        # 1 s windows: a block spans at most a few, summed in float64 in file order
        first, last = pos // track.sr, (pos + len(block) - 1) // track.sr
        edges = np.arange(first + 1, last + 1) * track.sr - pos
        for c in range(track.channels):
            sums = np.add.reduceat(block[:, c].astype(np.float64), np.r_[0, edges])
            window_sums[first : last + 1, c] += sums[: max(len(window_sums) - first, 0)]  # past the end: ignored
        if identical:
            identical = bool((block == block[:, :1]).all())

        if block_peak >= threshold or open_run is not None:
            full = (magnitude.max(axis=1) if track.channels > 1 else magnitude) >= threshold
            starts, ends = _runs(full)
            if open_run is not None and not (len(starts) and starts[0] == 0):
                if pos - open_run >= params.clip_run_samples:  # the run ended exactly at the block edge
                    runs.append((open_run, pos))
                open_run = None
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                start = open_run if (s == 0 and open_run is not None) else pos + s
                open_run = None
                if e == len(block):
                    open_run = start  # may continue into the next block
                elif pos + e - start >= params.clip_run_samples:
                    runs.append((start, pos + e))

        mean = block[:, 0] if track.channels == 1 else block.mean(axis=1)
        if detection is not None:
            detection.feed(mean)  # (a block with NaN or infinity leaves it unmade, below)
        if pitch is not None:
            pitch.feed(mean)  # (likewise)
        pending = np.concatenate((pending, np.abs(mean)))  # samples not yet in a full hop
        whole = len(pending) // ENVELOPE_HOP * ENVELOPE_HOP
        hops.append(pending[:whole].reshape(-1, ENVELOPE_HOP).max(axis=1))
        pending = pending[whole:]
        pos += len(block)
    if open_run is not None and pos - open_run >= params.clip_run_samples:
        runs.append((open_run, pos))
    if len(pending):
        hops.append(pending.max(keepdims=True))
    envelope = np.concatenate(hops) if hops else np.zeros(0, dtype=np.float32)
    return TrackStats(
        name=track.name,
        peak=peak,
        dc=_dc_offset(window_sums, pos, track.sr),
        clip_runs=tuple(runs),
        identical_channels=identical,
        envelope=envelope,
        invalid_runs=_merge_runs(invalid),
        invalid_frames=invalid_frames,
        heard=Heard(detection.listening, detection.level) if detection is not None and not invalid_frames else None,
        pitch=pitch.result() if pitch is not None and not invalid_frames else None,
    )


def _measure(track: Track, *, params: QcParams, listen: dict[str, Listening], pitched: dict[str, float]) -> TrackStats:
    """`measure_track` of one of a session's tracks (a task for `map_outcomes`)."""
    return measure_track(track, params=params, listening=listen.get(track.name), yin_threshold=pitched.get(track.name))


def _merge_runs(runs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Runs that touch across a block edge become one."""
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


# ------------------------------------------------------------------------------------- per track
def _dbfs(x: float) -> float:
    return float(20 * np.log10(max(abs(x), 1e-12)))


def _track_findings(track: Track, stats: TrackStats, sr: int, params: QcParams) -> list[Finding]:
    name = track.name
    seconds = lambda pos: round((pos + track.offset) / sr, 4)  # noqa: E731 - file samples -> timeline s
    out: list[Finding] = []
    if stats.invalid_frames:
        runs = stats.invalid_runs
        share = stats.invalid_frames / max(track.frames, 1)
        out.append(
            Finding(
                kind="invalid_samples",
                severity="error",
                track=name,
                start_s=seconds(runs[0][0]),
                end_s=seconds(runs[-1][1]),
                value=round(100 * share, 2),
                unit="% of samples",
                message=f"{name} holds {stats.invalid_frames} samples that are not numbers (NaN or infinity) in "
                f"{len(runs)} {'passage' if len(runs) == 1 else 'passages'} from {seconds(runs[0][0]):.3f} s: the "
                "file is damaged; ask for a re-export (sessionfix leaves it out of the analysis)",
            )
        )
        if share > 0.5:
            return out  # mostly not audio: its silence or level says nothing
    if stats.peak_dbfs < params.silent_dbfs:
        what = "digital silence" if stats.peak == 0 else f"nothing above {stats.peak_dbfs:.0f} dBFS"
        out.append(
            Finding(
                kind="silent",
                severity="warning",
                track=name,
                value=round(max(stats.peak_dbfs, -200), 1),
                unit="dBFS",
                message=f"{name} is silent ({what}); ask the client for the right file or leave it out",
            )
        )
        return out  # a silent track has no level problems worth listing

    if stats.clip_runs:
        passages: list[list[int]] = []  # [start, end, runs]
        merge = int(params.clip_merge_s * track.sr)
        for s, e in stats.clip_runs:
            if passages and s - passages[-1][1] <= merge:
                passages[-1][1], passages[-1][2] = e, passages[-1][2] + 1
            else:
                passages.append([s, e, 1])
        shown = passages[: params.max_clip_passages]
        for s, e, n in shown:
            out.append(
                Finding(
                    kind="clipping",
                    severity="warning",
                    track=name,
                    start_s=seconds(s),
                    end_s=seconds(e),
                    value=n,
                    unit="clips",
                    message=f"{name} clips {n}x between {seconds(s):.2f} s and {seconds(e):.2f} s; "
                    "ask for an unclipped take or repair it",
                )
            )
        if len(passages) > len(shown):
            rest = passages[len(shown) :]
            out.append(
                Finding(
                    kind="clipping",
                    severity="warning",
                    track=name,
                    start_s=seconds(rest[0][0]),
                    end_s=seconds(rest[-1][1]),
                    value=sum(p[2] for p in rest),
                    unit="clips",
                    message=f"{name} clips in {len(rest)} more passages up to {seconds(rest[-1][1]):.1f} s",
                )
            )

    worst_dc = max(stats.dc, key=abs)
    if _dbfs(worst_dc) > params.dc_offset_dbfs:
        out.append(
            Finding(
                kind="dc_offset",
                severity="warning",
                track=name,
                value=round(_dbfs(worst_dc), 1),
                unit="dBFS",
                message=f"{name} has a DC offset of {worst_dc:+.4f} ({_dbfs(worst_dc):.0f} dBFS); "
                "high-pass it below 10 Hz before editing or it will click",
            )
        )
    if stats.identical_channels:
        out.append(
            Finding(
                kind="dual_mono",
                severity="warning",
                track=name,
                value=track.channels,
                unit="channels",
                message=f"{name} is dual mono: its {track.channels} channels are identical; "
                "use one channel as a mono track",
            )
        )
    return out


# ------------------------------------------------------------------------------ across the session
def _majority(values: list[T]) -> T:
    return Counter(values).most_common(1)[0][0]


def _resolution(subtype: str) -> float:
    """Bits of resolution for ordering formats; floating point counts as the finest."""
    return {"FLOAT": 33.0, "DOUBLE": 64.0}.get(subtype, float(SUBTYPE_BITS.get(subtype, 0)))


def _bit_depth_finding(track: Track, session_subtype: str) -> Finding:
    """A stem whose sample format differs from most of the session's. Coarser: ask for a re-export at
    the session's resolution. Finer: nothing is lost; the other stems may have been bounced too coarse."""
    own, common = sample_format(track.subtype), sample_format(session_subtype)
    bits = SUBTYPE_BITS.get(track.subtype)
    severity: Severity
    if _resolution(track.subtype) < _resolution(session_subtype):
        severity, advice = "warning", f"ask for a {common} re-export: it may have been bounced with other settings"
    else:
        severity, advice = "info", f"nothing is lost; ask whether the other stems exist at {own} too"
    return Finding(
        kind="bit_depth_mismatch",
        severity=severity,
        track=track.name,
        value=bits,
        unit="bits" if bits else None,
        message=f"{track.name} is {own} but most of the session is {common}; {advice}",
    )


def _format_findings(session: Session, params: QcParams) -> list[Finding]:
    out: list[Finding] = []
    sr = session.sr
    for t in session.tracks:
        if t.sr != sr:
            out.append(
                Finding(
                    kind="sample_rate_mismatch",
                    severity="error",
                    track=t.name,
                    value=t.sr,
                    unit="Hz",
                    message=f"{t.name} is {t.sr} Hz but the session is {sr} Hz; resample it or "
                    "exclude it in sessionfix.toml",
                )
            )
    subtype = _majority([t.subtype for t in session.tracks])
    for t in session.tracks:
        if t.subtype != subtype:
            out.append(_bit_depth_finding(t, subtype))
    same_rate = [t for t in session.tracks if t.sr == sr]
    if same_rate and sr:
        end = _majority([t.end for t in same_rate])
        for t in same_rate:
            diff_ms = (t.end - end) / sr * 1e3
            if abs(diff_ms) > params.length_tolerance_ms:
                out.append(
                    Finding(
                        kind="length_mismatch",
                        severity="warning",
                        track=t.name,
                        value=round(diff_ms, 3),
                        unit="ms",
                        message=f"{t.name} ends {abs(diff_ms) / 1e3:.3f} s "
                        f"{'after' if diff_ms > 0 else 'before'} the other stems; "
                        "check that it was exported from the session start to end",
                    )
                )
    return out


def _duplicate_findings(session: Session, stats: dict[str, TrackStats], silent: set[str]) -> list[Finding]:
    """Tracks whose decoded samples are those of another, bit for bit. Only tracks with the same length
    and the same envelope can be (a copy in reversed polarity has the envelope, not the samples): those
    few are read again and compared, so the QC's pass hashes nothing (a CRC of every sample cost 0.02 s
    a 5-min stem)."""
    first_with: dict[tuple[int, int, bytes], list[str]] = {}
    out = []
    for name in sorted(stats):
        if name in silent:
            continue
        track = session.track(name)
        alike = first_with.setdefault((track.frames, track.channels, stats[name].envelope.tobytes()), [])
        original = next((other for other in alike if _same_samples(session.track(other), track)), None)
        alike.append(name)
        if original is not None:
            out.append(
                Finding(
                    kind="duplicate",
                    severity="warning",
                    track=name,
                    message=f"{name} has exactly the same audio as {original}; one of them is probably the wrong file",
                )
            )
    return out


def _same_samples(a: Track, b: Track) -> bool:
    """Whether two files decode to the same samples, bit for bit (NaNs too); False when either cannot be
    read to its end."""
    try:
        return all(
            x.shape == y.shape and np.array_equal(x.view(np.uint32), y.view(np.uint32))
            for x, y in zip(iter_blocks(a), iter_blocks(b), strict=True)
        )
    except (OSError, RuntimeError, ValueError):
        return False


def _loud_hits(envelope: np.ndarray, sr: int, count: int) -> np.ndarray:
    """Timeline-free positions (samples in the file) of the `count` loudest, well-separated peaks."""
    if not envelope.size or envelope.max() <= 0:
        return np.zeros(0, dtype=np.int64)
    peaks, props = find_peaks(envelope, height=0.2 * envelope.max(), distance=max(1, int(0.08 * sr / ENVELOPE_HOP)))
    loudest = peaks[np.argsort(props["peak_heights"])[::-1][:count]]
    return np.sort(loudest) * ENVELOPE_HOP


def polarity_votes(
    a: Track,
    b: Track,
    hits: np.ndarray,
    *,
    max_lag: int,
    sr: int,
    min_correlation: float,
    search_lag: int | None = None,
) -> np.ndarray:
    """Per hit, the sign (+1, -1) of the strongest normalised correlation of b against a within
    +-search_lag samples (default `max_lag`) around timeline position `hits`; 0 where the hit is too weak
    to vote, NaN where that strongest correlation lies beyond +-max_lag (b is delayed, or not this drum's:
    a lobe within reach of the undelayed alignment votes at random)."""
    search = max_lag if search_lag is None else max(search_lag, max_lag)
    pre, post = int(0.005 * sr), int(0.025 * sr)
    votes = np.zeros(len(hits))
    close = read_windows(a, hits - pre, pre + post).astype(np.float64)
    other = read_windows(b, hits - pre - search, pre + post + 2 * search).astype(np.float64)
    for i, (x, y) in enumerate(zip(close, other, strict=True)):
        x -= x.mean()
        y -= y.mean()
        energy_x = float(x @ x)
        if energy_x <= 0:
            continue
        running = np.concatenate(([0.0], np.cumsum(y**2)))  # each window's energy from one running sum
        energy_y = running[len(x) :] - running[: -len(x)]
        corr = np.correlate(y, x, mode="valid") / np.sqrt(energy_x * np.maximum(energy_y, 1e-20))
        k = int(np.argmax(np.abs(corr)))
        if abs(corr[k]) >= min_correlation:
            votes[i] = np.sign(corr[k]) if abs(k - search) <= max_lag else np.nan
    return votes


def _level_below_db(a: Track, b: Track, hits: np.ndarray, *, sr: int) -> float:
    """How far below `a` mic `b` hears the hits at timeline positions `hits`: the median over hits of
    the difference of their RMS levels over the 30 ms from 5 ms before each, dB."""
    if not len(hits):
        return 0.0
    pre, post = int(0.005 * sr), int(0.025 * sr)
    level_a = np.sqrt(np.mean(read_windows(a, hits - pre, pre + post).astype(np.float64) ** 2, axis=1))
    level_b = np.sqrt(np.mean(read_windows(b, hits - pre, pre + post).astype(np.float64) ** 2, axis=1))
    return float(np.median(20 * np.log10((level_a + 1e-12) / (level_b + 1e-12))))


LATENCY_SEARCH_MS = 25.0  # a routing or plug-in latency on one mic: up to 1024 samples at 44.1 kHz (23 ms)


def _polarity_findings(
    session: Session, layout: KitLayout, stats: dict[str, TrackStats], params: QcParams
) -> list[Finding]:
    """Close mics on one drum (snare top/bottom, kick in/out) that are in opposite polarity."""
    out = []
    sr = session.sr or 48000
    for group in layout.siblings:
        members = [n for n in group if n in stats and stats[n].peak_dbfs > params.silent_dbfs]
        if len(members) < 2:
            continue
        anchor = max(members, key=lambda n: float(stats[n].envelope.max()))  # the loudest mic leads
        track_a = session.track(anchor)
        hits = _loud_hits(stats[anchor].envelope, sr, params.polarity_hits) + track_a.offset
        for other in members:
            if other == anchor:
                continue
            if _level_below_db(track_a, session.track(other), hits, sr=sr) > SAME_DRUM_DB:
                continue  # a mic that far down is inside another drum hearing this one (a second kick's mic)
            votes = polarity_votes(
                track_a,
                session.track(other),
                hits,
                sr=sr,
                max_lag=int(params.polarity_max_lag_ms * 1e-3 * sr),
                min_correlation=params.polarity_min_correlation,
                search_lag=int(LATENCY_SEARCH_MS * 1e-3 * sr),
            )
            voting = votes[np.isfinite(votes) & (votes != 0)]
            # polarity is read at the two mics' alignment: where most hits align them beyond reach, the
            # other mic is delayed (a bottom snare mic 6 ms late read "reversed" on every hit's nearer lobe)
            beyond = int(np.isnan(votes).sum())
            if len(voting) < 3 or len(voting) < params.polarity_min_agreement * (len(voting) + beyond):
                continue
            if np.mean(voting < 0) < params.polarity_min_agreement:
                continue
            # Flip the one that disagrees with the overheads; failing that, the bottom/under mic.
            flip = _odd_one_out(session, anchor, other, hits, layout, params) or next(
                (n for n in (other, anchor) if is_underside(n)), other
            )
            keep = anchor if flip == other else other
            out.append(
                Finding(
                    kind="polarity",
                    severity="warning",
                    track=flip,
                    value=round(float(np.mean(voting < 0)) * 100, 1),
                    unit="% of hits",
                    message=f"{flip} is in reversed polarity against {keep} "
                    f"({np.sum(voting < 0)} of {len(voting)} hits); flip the polarity of {flip}",
                )
            )
    return out


def _odd_one_out(session: Session, a: str, b: str, hits: np.ndarray, layout: KitLayout, params: QcParams) -> str | None:
    """Of two close mics in opposite polarity, the one whose polarity disagrees with the overheads."""
    sr = session.sr or 48000
    for ref in layout.references:
        signs = {}
        for name in (a, b):
            votes = polarity_votes(
                session.track(name), session.track(ref), hits, sr=sr, max_lag=int(0.015 * sr), min_correlation=0.15
            )
            voting = votes[votes != 0]
            signs[name] = float(np.mean(voting)) if len(voting) >= 3 else 0.0
        if signs[a] * signs[b] < 0 and min(abs(signs[a]), abs(signs[b])) >= 0.5:
            return a if signs[a] < 0 else b
    return None


def check_session(
    session: Session,
    *,
    layout: KitLayout,
    params: QcParams,
    progress: Progress = quiet,
    jobs: int = 1,
    known: dict[str, TrackStats] | None = None,
    listen: dict[str, Listening] | None = None,
    pitched: dict[str, float] | None = None,
) -> QcResult:
    """All technical checks of item `qc`: format, level, clipping, DC, silence, duplicates, polarity.
    The tracks are measured `jobs` at a time (same results); those in `known` (by name) are taken as
    measured there (a stem copied byte for byte from a session scanned before). `listen`: close mics whose
    detection envelope is made on the same pass (by name; `TrackStats.heard`); `pitched`: tracks whose f0
    is made on it, with YIN's threshold (`TrackStats.pitch`)."""
    stats: dict[str, TrackStats] = {}
    findings: list[Finding] = list(_format_findings(session, params))
    sr = session.sr or 48000
    known = known or {}
    unknown = [t for t in session.tracks if t.name not in known]
    fresh = map_outcomes(
        partial(_measure, params=params, listen=listen or {}, pitched=pitched or {}),
        unknown,
        jobs=jobs,
        progress=progress,
        stage="Checking tracks",
    )
    by_name: dict[str, TrackStats | Exception] = {**known, **{t.name: r for t, r in zip(unknown, fresh, strict=True)}}
    measured = [by_name[t.name] for t in session.tracks]
    for track, result in zip(session.tracks, measured, strict=True):
        if isinstance(result, (RuntimeError, OSError)):
            findings.append(
                Finding(
                    kind="unreadable",
                    severity="error",
                    track=track.name,
                    message=f"{track.name} cannot be decoded ({result}); re-export it",
                )
            )
            continue
        if isinstance(result, Exception):
            raise result
        stats[track.name] = result
        findings += _track_findings(track, stats[track.name], sr, params)
    silent = {f.track for f in findings if f.kind in ("silent", "invalid_samples") and f.track}
    findings += _duplicate_findings(session, stats, silent)
    findings += _polarity_findings(session, layout, stats, params)
    return QcResult(stats=stats, findings=tuple(findings))
