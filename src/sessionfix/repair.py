"""Repairs: every mechanical fix a scan's findings support, planned per stem and rendered in one pass.

Conventions
- A plan holds, per stem, the operations in the order they are applied to its audio: resample to the
  session rate, one channel of a dual-mono file, DC removal, polarity, placement on the session
  timeline (padded to one length), a sub-sample shift (a delayed mic, a late track), then the drum
  realignment (`realign.render`). Positions are samples at the session rate on the session timeline.
- Each operation carries the measured reason, in the user's units (ms, Hz, dBFS).
- What cannot be repaired safely (clipping, tuning, timing of a phrase, a file sessionfix cannot read)
  is left for the engineer and listed as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .findings import Finding
from .realign import EditPlan, render, shifted
from .session import Session, Track

# The repairs, named by the finding each one removes ("timeline" places stems that start at different
# BWF times or end at different lengths on one timeline: a session every DAW imports at zero).
REPAIRS = (
    "sample_rate_mismatch",
    "dual_mono",
    "dc_offset",
    "polarity",
    "timeline",
    "mic_delay",
    "track_offset",
    "partial_quantisation",
)


def removed_kinds(repair: str) -> tuple[str, ...]:
    """The finding kinds a repair (one of REPAIRS) removes: its own, and for "timeline" a stem's
    length_mismatch too."""
    return (repair, "length_mismatch") if repair == "timeline" else (repair,)


# Findings no mechanical repair removes: the engineer's (what to do).
LEFT_FOR_THE_ENGINEER = {
    "clipping": "declip or ask for a new take",
    "out_of_tune": "pitch-correct or replay",
    "track_tuning": "retune the track (a pitch shift of the whole stem is a musical decision)",
    "out_of_time": "re-time the phrase",
    "unreadable": "ask for a re-export",
    "invalid_samples": "ask for a re-export",
    "silent": "ask for the right file",
    "duplicate": "ask for the right file",
    "bit_depth_mismatch": "ask for a re-export at the session's resolution if it matters",
}


@dataclass(frozen=True)
class Operation:
    """One step of a stem's repair: `kind` (one of REPAIRS), a value in `unit`, and why."""

    kind: str
    value: float | None
    unit: str | None
    reason: str


@dataclass(frozen=True)
class StemRepair:
    """Everything done to one stem, in order."""

    track: str
    resample_from: int | None = None  # Hz, resampled to the session rate
    mono: bool = False  # a dual-mono file written as one channel
    dc: tuple[float, ...] | None = None  # per channel, subtracted
    flip: bool = False  # polarity reversed
    place: bool = False  # placed on the session timeline and padded to its length
    shift: float = 0.0  # samples at the session rate, + later
    realign: bool = False  # the drum realignment applied
    operations: tuple[Operation, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.operations)


@dataclass(frozen=True)
class RepairPlan:
    """The whole session's repair."""

    sr: int
    length: int  # samples at sr: every placed stem's length
    stems: tuple[StemRepair, ...]  # one per readable stem, in session order
    align: EditPlan
    left: tuple[Finding, ...] = field(default=())  # findings no repair here removes

    def stem(self, track: str) -> StemRepair:
        return next(s for s in self.stems if s.track == track)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The repairs this plan makes, in REPAIRS order."""
        used = {op.kind for s in self.stems for op in s.operations}
        return tuple(k for k in REPAIRS if k in used)


def _at_session_rate(track: Track, sr: int) -> tuple[int, int]:
    """(offset, frames) of a stem on the session timeline, in samples at the session rate."""
    return round(track.offset * sr / track.sr), round(track.frames * sr / track.sr)


def plan_repairs(
    session: Session,
    findings: tuple[Finding, ...],
    *,
    dc: dict[str, tuple[float, ...]],
    align: EditPlan,
    readable: set[str],
    only: set[str] | None = None,
    length_tolerance: int = 0,
) -> RepairPlan:
    """The repairs `findings` support for the stems in `readable` (decoded in full and not silent, at any
    rate), limited to the kinds in `only` (default: all of REPAIRS).

    dc : per stem, its measured DC offset per channel (qc's TrackStats.dc).
    align : the drum realignment's plan (`realign.plan_edits`), applied to its tracks.
    length_tolerance : samples; a stem that starts with the session and ends within this of its end keeps
        its length (the QC's tolerance: a stem at another rate ends a fraction of a sample off once
        resampled, which pads no other stem).
    """
    sr = session.sr or 0
    chosen = set(REPAIRS) if only is None else set(only)
    by_track: dict[str, list[Finding]] = {}
    for f in findings:
        if f.track:
            by_track.setdefault(f.track, []).append(f)
    spans = [_at_session_rate(t, sr) for t in session.tracks if t.name in readable]
    length = max((offset + frames for offset, frames in spans), default=0)
    stems = []
    for track in session.tracks:
        if track.name not in readable:
            continue
        own = {f.kind: f for f in by_track.get(track.name, [])}
        ops: list[Operation] = []
        repair = StemRepair(track=track.name)
        if track.sr != sr and "sample_rate_mismatch" in chosen:
            ops.append(
                Operation(
                    "sample_rate_mismatch", track.sr, "Hz", f"{track.sr} Hz in a {sr} Hz session: resampled (soxr VHQ)"
                )
            )
            repair = StemRepair(track=track.name, resample_from=track.sr)
        elif track.sr != sr:
            continue  # not at the session rate and not resampled: nothing else can be done to it
        if "dual_mono" in own and "dual_mono" in chosen:
            ops.append(Operation("dual_mono", track.channels, "channels", "identical channels: written as mono"))
            repair = replace(repair, mono=True)
        if "dc_offset" in own and "dc_offset" in chosen and track.name in dc:
            offsets = dc[track.name][:1] if repair.mono else dc[track.name]
            level = own["dc_offset"].value
            said = f"a DC offset at {level:.1f} dBFS" if level is not None else "a DC offset"
            ops.append(Operation("dc_offset", level, "dBFS", f"{said}: removed"))
            repair = replace(repair, dc=tuple(offsets))
        if "polarity" in own and "polarity" in chosen:
            measured = own["polarity"].message.split(";")[0]  # what was measured, without the advice
            ops.append(Operation("polarity", None, None, f"{measured}: flipped"))
            repair = replace(repair, flip=True)
        offset, frames = _at_session_rate(track, sr)
        if "timeline" in chosen and (offset != 0 or length - (offset + frames) > length_tolerance):
            ops.append(
                Operation(
                    "timeline",
                    round(offset / sr, 6),
                    "s",
                    f"starts {offset / sr:.3f} s into the session and ends {(length - offset - frames) / sr:.3f} s "
                    "before the session's end: placed at its time and padded to the session's length",
                )
            )
            repair = replace(repair, place=True)
        for kind in ("mic_delay", "track_offset"):
            if kind in own and kind in chosen and own[kind].value is not None:
                ms = float(own[kind].value or 0.0)
                ops.append(Operation(kind, round(ms, 3), "ms", f"{ms:.2f} ms late for the whole song: moved earlier"))
                repair = replace(repair, shift=repair.shift - ms * 1e-3 * sr)
        if "partial_quantisation" in chosen and not align.empty and track.name in align.tracks:
            ops.append(
                Operation(
                    "partial_quantisation",
                    len(align.cuts),
                    "regions",
                    f"the kit realigned ({len(align.cuts)} regions, following the {align.follow} mics)",
                )
            )
            repair = replace(repair, realign=True)
        stems.append(replace(repair, operations=tuple(ops)))
    removed: set[tuple[str, str | None]] = {
        (kind, s.track) for s in stems for op in s.operations for kind in removed_kinds(op.kind)
    }
    if not align.empty and "partial_quantisation" in chosen:
        removed |= {("partial_quantisation", f.track) for f in findings if f.kind == "partial_quantisation"}
    left = tuple(f for f in findings if f.severity != "info" and (f.kind, f.track) not in removed)
    return RepairPlan(sr=sr, length=length, stems=tuple(stems), align=align, left=left)


EXACT_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")  # a decoded sample negates to a sample


def negates_exactly(audio: np.ndarray, track: Track, repair: StemRepair) -> bool:
    """Whether the stem written from `audio` (its samples as decoded, before `apply_repair`) is their exact
    negation: a polarity flip alone, in a format whose samples negate without rounding, and no sample at
    negative full scale (PCM's -1.0, whose negation clips)."""
    alone = repair.flip and repair == StemRepair(track=repair.track, flip=True, operations=repair.operations)
    if not alone or track.subtype not in EXACT_SUBTYPES:
        return False
    return track.subtype in ("FLOAT", "DOUBLE") or not len(audio) or float(audio.min()) > -1.0


def apply_repair(audio: np.ndarray, track: Track, repair: StemRepair, plan: RepairPlan) -> np.ndarray:
    """One stem's audio (frames, channels) with its repairs applied, in order. Float64 out; a float64
    `audio` is worked on in place (a stem's samples are 115 MB per 5 min: each copy costs)."""
    x = np.asarray(audio, np.float64)
    offset, _ = _at_session_rate(track, plan.sr)
    if repair.resample_from is not None:
        import soxr

        x = soxr.resample(x, repair.resample_from, plan.sr, quality="VHQ")
        if x.ndim == 1:
            x = x[:, None]
    if repair.mono:
        x = x[:, :1]
    if repair.dc is not None:
        x -= np.asarray(repair.dc, np.float64)[None, : x.shape[1]]
    if repair.flip:
        np.negative(x, out=x)
    if repair.place:
        placed = np.zeros((plan.length, x.shape[1]))
        end = min(offset + len(x), plan.length)
        placed[offset:end] = x[: end - offset]
        x, start = placed, 0
    else:
        start = offset
    if repair.shift:
        x = shifted(x, repair.shift, 0, len(x))
    if repair.realign:
        x = render(x, plan.align, start=start)
    return x
