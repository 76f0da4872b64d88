"""The commands' work: the stages called in order, every intermediate kept.

`scan` reads a session and runs every analysis stage (`Scan`); `align` scans, plans the drum
realignment, renders it into a new folder and scans that folder again (`Aligned`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
import soundfile as sf

from .config import Config, load_config
from .effort import Effort, estimate_effort
from .errors import ConfigError
from .export import rpp_project
from .findings import SEVERITY_RANK, Finding
from .grid import Tempo
from .kit import KitAnalysis, KitParams, analyse_kit, kit_tempo, mix_tempo
from .lags import measure_kit
from .onsets import (
    Heard,
    Hits,
    Listening,
    at_played,
    attribute_bleed,
    bleed_where_played,
    detect_hits,
    detect_mix_hits,
    echoes_of_played,
    find_close_mic_hits,
)
from .parallel import Started
from .parts import PartAnalysis, PartsAnalysis, PartsParams, analyse_part, combine_parts, yin
from .progress import Progress, quiet
from .qc import QcResult, TrackStats, check_session
from .realign import EditPlan, Follow, RealignParams, plan_edits, render
from .repair import RepairPlan, apply_repair, negates_exactly, plan_repairs
from .rolemodel import (
    FEATURE_SECONDS,
    MIN_CONFIDENCE,
    MIN_SECONDS,
    RoleModel,
    envelope_of_level,
    guess_roles,
    level_db,
    load_model,
    running_energy,
    session_context,
    sound_features,
)
from .roles import KIT_ROLES, PITCHED_ROLES, KitLayout, KitPair, Role, assign_roles, drum_key, kit_layout
from .session import (
    AUDIO_SUFFIXES,
    CONFIG_NAME,
    EDITS_NAME,
    RPP_NAME,
    Session,
    Track,
    TrackAudio,
    load_session,
    printable,
    read,
)
from .writer import copy_file, staged_folder, write_stem


@dataclass(frozen=True)
class Scan:
    """Everything one scan learnt; the reports are views of it."""

    session: Session
    config: Config
    roles: dict[str, Role]
    layout: KitLayout
    qc: QcResult
    kit: KitAnalysis
    parts: PartsAnalysis
    findings: tuple[Finding, ...]  # every stage's, sorted by track then time
    effort: Effort
    roles_from_audio: frozenset[str] = frozenset()  # tracks whose role the audio gave, not the name
    role_guesses: dict[str, tuple[str, float]] = field(default_factory=dict)  # audio's guess and its confidence


def _sort_key(f: Finding) -> tuple:
    return (f.track or "", f.start_s if f.start_s is not None else -1.0, -SEVERITY_RANK[f.severity], f.kind)


@dataclass(frozen=True)
class Earlier:
    """A scan made before, the stems copied byte for byte from its session since (`copied`) and those
    written as the exact negation of their source (`negated`: a polarity flip alone, every sample
    negated without rounding or clipping; names): a rescan takes their per-track measurements as they
    were, where such a stem sits at the same place on the timeline (a negated stem's DC offset negated:
    its level, envelope, clipping, detection envelope, hits and f0 do not depend on the sign). The
    report is the same as without."""

    scan: Scan
    copied: frozenset[str]
    negated: frozenset[str] = frozenset()

    def unchanged(self, session: Session) -> set[str]:
        """The names of `session`'s tracks copied or negated from the earlier session, at the same place
        on the timeline."""
        before = {t.name: t for t in self.scan.session.tracks}
        carried = self.copied | self.negated
        return {
            t.name
            for t in session.tracks
            if t.name in carried and t.name in before and replace(before[t.name], path=t.path) == t
        }

    def stats(self, session: Session) -> dict[str, TrackStats]:
        """The QC figures of the unchanged tracks (they depend on the file alone)."""
        unchanged = self.unchanged(session)
        return {
            n: replace(stats, dc=tuple(0.0 - d for d in stats.dc)) if n in self.negated else stats
            for n, stats in self.scan.qc.stats.items()
            if n in unchanged
        }

    def found(self, session: Session, roles: dict[str, Role]) -> dict[str, Hits]:
        """The close-mic hits of the unchanged tracks that keep the earlier scan's role (the instrument
        their hits are detected as)."""
        unchanged = self.unchanged(session)
        return {
            n: hits
            for n, hits in self.scan.kit.found.items()
            if n in unchanged and self.scan.roles.get(n) == roles.get(n)
        }


def scan(
    path: Path | str, *, progress: Progress = quiet, jobs: int = 1, parts: bool = True, earlier: Earlier | None = None
) -> Scan:
    """Load a session folder and run every analysis stage over it.

    progress : told (stage, steps done, steps in all) as the long stages go.
    jobs : tracks analysed at once, each in its own process (the results are the same for any value).
    parts : analyse the pitched parts (tuning, timing); without, the scan has no parts and no findings of
        theirs (what `align` needs is the kit).
    earlier : a scan of the session this one was delivered from (`align`, `repair`): stems copied from it
        unchanged are not measured again.
    """
    folder = Path(path)
    config = load_config(folder) if folder.is_dir() else Config()
    session = load_session(folder, exclude=config.exclude)
    names = {t.name for t in session.tracks}
    for name in config.roles:
        if name not in names:
            raise ConfigError(
                f"sessionfix.toml gives a role to {name!r}, which is not a readable track "
                "of the session; fix the file name"
            )
    for close, references in config.pairs.items():
        for name in (close, *references):
            if name not in names:
                raise ConfigError(
                    f"sessionfix.toml [pairs] names {name!r}, which is not a readable track of the session; "
                    "fix the file name"
                )
    roles = assign_roles([t.name for t in session.tracks], overrides=config.roles)
    layout = kit_layout(roles, pairs=config.pairs)
    known_stats = earlier.stats(session) if earlier is not None else None
    kit_params = KitParams()
    # the close mics' detection envelopes are made on the QC's pass: one decode of each for both
    listen = {name: Listening.of(roles[name], session.sr or 0, kit_params.onsets) for name in layout.close}
    parts_params = PartsParams()
    # ...and the pitched tracks' f0 (those named so; one guessed from its sound is tracked later)
    pitched_by_name = {
        t.name: parts_params.yin_threshold
        for t in session.tracks
        if parts and roles[t.name] in PITCHED_ROLES and t.sr == session.sr
    }
    qc = check_session(
        session,
        layout=layout,
        params=config.qc,
        progress=progress,
        jobs=jobs,
        known=known_stats,
        listen=listen,
        pitched=pitched_by_name,
    )
    usable = usable_tracks(session, qc)
    guesses = _roles_by_audio(session, roles, usable=usable, named=set(config.roles), progress=progress)
    confident = {n: role for n, (role, p) in guesses.items() if p >= MIN_CONFIDENCE}
    drums = [n for n, role in confident.items() if role in KIT_ROLES]
    if len(drums) == 1 and not any(roles[t.name] in KIT_ROLES + ("kit",) for t in session.tracks):
        del confident[drums[0]]  # one drum mic alone is a whole kit on one track: `_kits_by_audio` decides
    roles = {**roles, **confident}  # type: ignore[dict-item]
    layout = kit_layout(roles, pairs=config.pairs) if confident else layout
    kits_by_audio = _kits_by_audio(session, roles, usable=usable)
    roles = {**roles, **{name: "kit" for name in kits_by_audio}}
    pitched = [t for t in session.tracks if parts and t.name in usable and roles[t.name] in PITCHED_ROLES]
    started: list[Started[_PartTask, PartAnalysis]] = []

    def start_parts(tempo: Tempo | None) -> None:
        """The parts need only the grid (their f0 was tracked on the QC's pass, or is tracked now): the
        workers find their notes while the kit's lags are measured."""
        tasks = [(t, roles[t.name], tempo, parts_params, qc.stats[t.name].pitch) for t in pitched]
        started.append(Started(_pitched_part, tasks, jobs=jobs))

    known_hits = earlier.found(session, roles) if earlier is not None else None
    kit = analyse_kit_stage(
        session,
        layout.only(usable),
        roles,
        kit_params,
        progress,
        usable=usable,
        jobs=jobs,
        on_tempo=start_parts,
        known_hits=known_hits,
        heard={name: stats.heard for name, stats in qc.stats.items() if stats.heard is not None},
    )
    part_list = started[0].results(progress=progress, stage="Tracking pitch")
    analysed = combine_parts(part_list, tempo=kit.tempo, params=parts_params)
    findings = tuple(sorted(session.findings + qc.findings + kit.findings + analysed.findings, key=_sort_key))
    effort = estimate_effort(findings, units={"partial_quantisation": kit.moved_hits})
    return Scan(
        session=session,
        config=config,
        roles=roles,
        layout=layout,
        qc=qc,
        kit=kit,
        parts=analysed,
        findings=findings,
        effort=effort,
        roles_from_audio=frozenset(kits_by_audio) | frozenset(confident),
        role_guesses=guesses,
    )


_PartTask = tuple[Track, Role, Tempo | None, PartsParams, tuple[np.ndarray, np.ndarray] | None]


def _pitched_part(task: _PartTask) -> PartAnalysis:
    """One pitched track's notes, tuning and timing, from its f0 if the QC's pass made it (a task for
    `map_ordered`)."""
    track, role, tempo, params, pitch = task
    return analyse_part(
        TrackAudio(track),  # decoded a block at a time: memory does not grow with the track
        sr=track.sr,
        track=track.name,
        a4_hz=440.0,
        tempo=tempo,
        params=params,
        start_s=track.offset / track.sr,
        role=role,
        tracked=pitch,
    )


def analyse_kit_stage(
    session: Session,
    layout: KitLayout,
    roles: dict[str, Role],
    params: KitParams,
    progress: Progress = quiet,
    *,
    usable: set[str] | None = None,
    jobs: int = 1,
    on_tempo: Callable[[Tempo | None], None] | None = None,
    known_hits: dict[str, Hits] | None = None,
    heard: dict[str, Heard] | None = None,
) -> KitAnalysis:
    """Hits on the close mics, the tempo grid, per-hit lags against every reference, then the verdicts.
    `usable`: the tracks a one-mic kit may be read from (default: all). `on_tempo` is told the grid as
    soon as it is known, before the lags are measured. `known_hits`: close mics' hits as found before, on
    byte-identical stems at the same place (not detected again). `heard`: close mics' detection
    envelopes made on the QC's pass."""
    sr = session.sr or 0
    found = find_close_mic_hits(
        session,
        layout=layout,
        roles=roles,
        params=params.onsets,
        progress=progress,
        jobs=jobs,
        known=known_hits,
        heard=heard,
    )
    drum_of = {name: drum_key(name, roles[name]) for name in found}
    hits = attribute_bleed(found, drum_of, sr=sr)
    tempo = kit_tempo(hits, roles, sr=sr, end_s=session.duration_s)
    if tempo is None:
        tempo = _one_mic_tempo(session, roles, usable={t.name for t in session.tracks} if usable is None else usable)
    if on_tempo is not None:
        on_tempo(tempo)
    if tempo is not None and tempo.bpm > 0:  # an edit moves a hit at most half a sixteenth, to its grid line
        half_step_ms = 60e3 / tempo.bpm / 8
        params = replace(
            params, lags=replace(params.lags, widest_move_ms=min(params.lags.widest_move_ms, half_step_ms))
        )
    lags, agreed = measure_kit(
        session, layout=layout, roles=roles, hits=hits, params=params.lags, progress=progress, jobs=jobs
    )
    kit = analyse_kit(
        layout=layout, roles=roles, hits=hits, lags=lags, agreed=agreed, tempo=tempo, sr=sr, params=params
    )
    if not kit.edited:
        return replace(kit, found=found)
    # an edited mic's hits may be another edited drum's bleed, which the other mics heard where that drum
    # was played: the hits are attributed once more there (each mic's as found, the edited mics' own less
    # their moves), and the edited mics whose hits change are measured again (the others keep theirs: an
    # edit found is checked, none is looked for anew), except where an unedited mic's hits echo an edited
    # drum where it was played (a floor tom set ringing by every snare stroke): those leave it
    placed = {**found, **{name: kit.hits[name] for name in kit.edited}}
    moves = {name: np.round(kit.moves(name, sr)).astype(np.int64) for name in kit.edited}
    again = bleed_where_played(placed, moves, drum_of, sr=sr)
    played = {name: at_played(kit.hits[name], moves[name])[0] for name in kit.edited}
    unedited = echoes_of_played({n: h for n, h in hits.items() if n not in kit.edited}, played, drum_of, sr=sr)
    again = {**again, **unedited}
    changed = [n for n in hits if not np.array_equal(again[n].positions, hits[n].positions)]
    if not changed:
        return replace(kit, found=found)
    hits = {**hits, **{name: again[name] for name in changed}}
    relayout = KitLayout(  # every close mic stays a neighbour that may confirm a hit (lags.measure_kit)
        close=layout.close,
        references=layout.references,
        pairs=tuple(p for p in layout.pairs if p.close in changed),
        siblings=layout.siblings,
    )
    lags = {pair: v for pair, v in lags.items() if pair[0] not in changed}
    agreed = {name: v for name, v in agreed.items() if name not in changed}
    new_lags, new_agreed = measure_kit(session, layout=relayout, roles=roles, hits=hits, params=params.lags, jobs=jobs)
    lags, agreed = {**lags, **new_lags}, {**agreed, **new_agreed}
    kit = analyse_kit(
        layout=layout, roles=roles, hits=hits, lags=lags, agreed=agreed, tempo=tempo, sr=sr, params=params
    )
    return replace(kit, found=found)


def _roles_by_audio(
    session: Session,
    roles: dict[str, Role],
    *,
    usable: set[str],
    named: set[str],
    progress: Progress = quiet,
    model: RoleModel | None = None,
) -> dict[str, tuple[str, float]]:
    """For every usable track whose name gives no role (and sessionfix.toml none): the role model's
    guess and its confidence (rolemodel.py), with the session's other tracks as context. `model`: the
    shipped one unless given (an evaluation's own fit)."""
    unnamed = [
        t
        for t in session.tracks
        if roles[t.name] == "other" and t.name in usable and t.name not in named and t.frames >= MIN_SECONDS * t.sr
    ]
    if not unnamed:
        return {}
    model = model or load_model()

    def opening(t: Track) -> np.ndarray:
        """The track's first FEATURE_SECONDS (read per use: memory holds one track's, not the session's)."""
        return read(t, start=t.offset, frames=min(t.frames, int(FEATURE_SECONDS * t.sr)))

    # every usable stem's level (1 ms steps) for the session context, and each unnamed one's own features,
    # from one read of its opening; a step per unnamed stem
    progress("Roles from audio", 0, len(unnamed))
    wanted = {t.name for t in unnamed}
    levels, sounds = {}, {}
    for t in session.tracks:
        if t.name in usable:
            audio = opening(t)
            energy = running_energy(audio, t.sr)
            levels[t.name] = level_db(audio, t.sr, energy)
            if t.name in wanted:
                sounds[t.name] = sound_features(audio, t.sr, energy)
                progress("Roles from audio", len(sounds), len(unnamed))
    context = session_context({name: envelope_of_level(level) for name, level in levels.items()})
    features = {t.name: np.concatenate((sounds[t.name], context[t.name])) for t in unnamed}
    arrival = {name: c[1] for name, c in context.items()}
    first = guess_roles(model, features, arrival)  # the model's own confidences pick _far_arrivals' close mic
    guessed = {**roles, **{n: cast(Role, r) for n, (r, _) in first.items()}}
    arrival.update(_far_arrivals(session, guessed, first, usable=usable))
    named_far = tuple(n for n in sorted(usable) if roles[n] in ("overhead", "room"))
    return guess_roles(model, features, arrival, levels, named_far)


def _far_arrivals(
    session: Session, roles: dict[str, Role], guesses: dict[str, tuple[str, float]], *, usable: set[str]
) -> dict[str, float]:
    """When the direct sound of a snare (else a kick) reaches each far mic (overhead or room, named or
    guessed), ms after its close mic: measured like the kit analysis's lags, on the close mic's hits in
    the first FEATURE_SECONDS. Far more exact than the attacks' cross-correlation (1 ms steps, and
    misled by long-ringing samples), it orders the far mics for the overhead/room split. Empty when
    the session has no such close mic or fewer than two far mics."""
    far = [n for n in sorted(usable) if roles.get(n) in ("overhead", "room")]
    for instrument in ("snare", "kick"):
        closes = [n for n in sorted(usable) if roles.get(n) == instrument]
        if closes and len(far) >= 2:
            break
    else:
        return {}
    close = max(closes, key=lambda n: guesses.get(n, ("", 1.0))[1])  # a named one (1.0), else the surest
    track = session.track(close)
    start, frames = track.offset, min(track.frames, int(FEATURE_SECONDS * track.sr))
    params = KitParams()
    hits = detect_hits(
        TrackAudio(track, start=start, frames=frames),
        sr=track.sr,
        instrument=instrument,
        track=close,
        params=params.onsets,
        start=start,
    )
    if len(hits) < params.min_hits:
        return {}
    layout = KitLayout(
        close=(close,), references=tuple(far), pairs=tuple(KitPair(close, ref, instrument) for ref in far), siblings=()
    )
    lags, agreed = measure_kit(session, layout=layout, roles=roles, hits={close: hits}, params=params.lags)
    if close not in agreed:
        return {}
    # each reference's lags are in the frame of its own template; the consensus puts them in one frame
    # (the edit's moves, which shift every reference's template alike, then cancel from the order)
    offsets = dict(zip(agreed[close].references, agreed[close].offsets, strict=True))
    sr = session.sr or 48000
    return {
        ref: (p.direct_lag + offsets[ref]) / sr * 1e3
        for (_, ref), p in lags.items()
        if ref in offsets and np.isfinite(p.direct_lag) and np.isfinite(offsets[ref])
    }


KIT_MAX_VOICED = 0.4  # share of pitched frames: eval kits 0.01, a sine-bodied test kick 0.32; parts 0.72-0.96
KIT_MIN_HITS = 16  # ...and has this many hits in its first minute


def _kits_by_audio(session: Session, roles: dict[str, Role], *, usable: set[str]) -> list[str]:
    """A kit recorded or bounced to one track whose name says nothing ("Audio 1.wav"): when the session
    has no other drum track, an unnamed track that is unpitched (YIN finds a pitch in under
    KIT_MAX_VOICED of its first minute) and full of hits is the kit."""
    drums = ("kit",) + KIT_ROLES
    if any(roles[t.name] in drums for t in session.tracks if t.name in usable):
        return []
    for track in session.tracks:
        if roles[track.name] != "other" or track.name not in usable or track.sr != session.sr:
            continue
        audio = read(track, start=track.offset, frames=min(track.frames, 60 * track.sr))
        f0, _ = yin(audio, track.sr, threshold=PartsParams().yin_threshold)
        unpitched = f0.size > 0 and float(np.mean(np.isfinite(f0))) < KIT_MAX_VOICED
        if unpitched and len(detect_mix_hits(audio, sr=track.sr, track=track.name).positions) >= KIT_MIN_HITS:
            return [track.name]  # one kit track gives the beat
    return []


def _one_mic_tempo(session: Session, roles: dict[str, Role], *, usable: set[str]) -> Tempo | None:
    """Without close mics: the beat map from a kit recorded or bounced to one track (role `kit`), else
    from an overhead or room mic, which hear the whole kit too."""
    for role in ("kit", "overhead", "room"):
        for track in session.tracks:
            if roles.get(track.name) == role and track.name in usable and track.sr == session.sr:
                hits = detect_mix_hits(TrackAudio(track), sr=track.sr, track=track.name, start=track.offset)
                return mix_tempo(hits, sr=track.sr, end_s=session.duration_s)
    return None


def readable_tracks(session: Session, qc: QcResult) -> set[str]:
    """Tracks decoded in full, not silent and without invalid samples (at any rate)."""
    lost = {f.track for f in qc.findings if f.kind in ("silent", "unreadable", "invalid_samples")}
    return {t.name for t in session.tracks if t.name in qc.stats and t.name not in lost}


def usable_tracks(session: Session, qc: QcResult) -> set[str]:
    """Tracks the analysis stages may read: readable and at the session rate."""
    return {t.name for t in session.tracks if t.sr == session.sr} & readable_tracks(session, qc)


# ------------------------------------------------------------------------------------------ align
@dataclass(frozen=True)
class Aligned:
    """What `align` did: the scan before, the plan, and (unless a dry run) what it wrote and the rescan."""

    before: Scan
    plan: EditPlan
    after: Scan | None  # the scan of the output; None for a dry run
    out: Path
    rendered: tuple[str, ...]  # files re-rendered with the plan
    copied: tuple[str, ...]  # files copied byte for byte
    unreadable: tuple[str, ...]  # ...of which sessionfix could not read these (delivered as they came)


def align(
    path: Path | str,
    out: Path,
    *,
    follow: Follow,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress = quiet,
    jobs: int = 1,
    parts: bool = False,
) -> Aligned:
    """Realign the kit of the session at `path` into `out`: every file of the session delivered (the moved
    group re-rendered in its own format, everything else byte for byte) plus EDITS_NAME, built in a
    staging folder and renamed into place, so `out` is complete or untouched. Then `out` is scanned.
    The scans analyse the kit; with `parts`, the pitched parts too (for a full report)."""
    folder = Path(path)
    before = scan(folder, progress=progress, jobs=jobs, parts=parts)
    sr = before.session.sr or 0
    plan = plan_edits(before.kit, follow=follow, sr=sr, params=RealignParams())
    if dry_run:
        return Aligned(before=before, plan=plan, after=None, out=out, rendered=(), copied=(), unreadable=())
    moved = set() if plan.empty else set(plan.tracks)
    tracks = {t.path: t for t in before.session.tracks if t.name in moved}
    edits: list[dict[str, object]] = []

    def realigned(track: Track, target: Path) -> None:
        audio, _ = sf.read(os.fsencode(track.path), dtype="float64", always_2d=True)
        write_stem(track, render(audio, plan, start=track.offset), target)
        edits.extend(_edit_rows(track.name, plan, track.offset, sr))

    def report() -> dict[str, object]:
        return {
            "schema": "sessionfix.edits/1",
            "session": before.session.path.resolve().name,
            "sample_rate": sr,
            "follow": plan.follow,
            "moved_tracks": sorted(moved),
            "edits": edits,
            "skipped_hits_s": [round(p / sr, 6) for p in plan.skipped],
        }

    project = {RPP_NAME: rpp_project(before.session, plan)}  # the same edits as items, on the original files
    rendered, copied = _deliver(folder, out, tracks, realigned, report, force=force, progress=progress, beside=project)
    after = scan(out, progress=progress, jobs=jobs, parts=parts, earlier=Earlier(before, frozenset(copied)))
    usable = usable_tracks(before.session, before.qc) | {CONFIG_NAME}
    unreadable = tuple(n for n in copied if n not in usable and n in _session_audio(before))
    return Aligned(
        before=before,
        plan=plan,
        after=after,
        out=out,
        rendered=tuple(rendered),
        copied=tuple(copied),
        unreadable=unreadable,
    )


# ----------------------------------------------------------------------------------------- repair
@dataclass(frozen=True)
class Repaired:
    """What `repair` did: the scan before, the plan, and (unless a dry run) what it wrote and the rescan."""

    before: Scan
    plan: RepairPlan
    after: Scan | None  # the scan of the output; None for a dry run
    out: Path
    rendered: tuple[str, ...]  # stems written anew
    copied: tuple[str, ...]  # files copied byte for byte


def repair(
    path: Path | str,
    out: Path,
    *,
    only: set[str] | None = None,
    follow: Follow = "close",
    dry_run: bool = False,
    force: bool = False,
    progress: Progress = quiet,
    jobs: int = 1,
    parts: bool = False,
) -> Repaired:
    """Every repair the scan of the session at `path` supports (limited to the kinds in `only`), rendered
    in one read and one write per stem into `out`, the other files copied byte for byte, with
    EDITS_NAME listing every operation and its measured reason; `out` is complete or untouched. Then
    `out` is scanned: its pitched parts only with `parts` (a whole report) or when a part was repaired
    (a late track slid), as nothing else the rescan checks depends on them."""
    folder = Path(path)
    before = scan(folder, progress=progress, jobs=jobs)
    session = before.session
    sr = session.sr or 0
    align_plan = plan_edits(before.kit, follow=follow, sr=sr, params=RealignParams())
    readable = readable_tracks(session, before.qc)
    plan = plan_repairs(
        session,
        before.findings,
        dc={name: stats.dc for name, stats in before.qc.stats.items()},
        align=align_plan,
        readable=readable,
        only=only,
        length_tolerance=int(before.config.qc.length_tolerance_ms * 1e-3 * sr),
    )
    if dry_run:
        return Repaired(before=before, plan=plan, after=None, out=out, rendered=(), copied=())
    references = [t.time_reference * sr / t.sr for t in session.tracks if t.time_reference is not None]
    origin = round(min(references)) if references else None  # the session start, samples since midnight
    changed = {s.track: s for s in plan.stems if s.changes}
    tracks = {t.path: t for t in session.tracks if t.name in changed}
    operations: list[dict[str, object]] = []
    edits: list[dict[str, object]] = []
    negated: list[str] = []  # stems written as the exact negation of their source

    def repaired(track: Track, target: Path) -> None:
        stem = changed[track.name]
        audio, _ = sf.read(os.fsencode(track.path), dtype="float64", always_2d=True)
        if negates_exactly(audio, track, stem):
            negated.append(track.name)
        moved_in_time = stem.place or stem.resample_from is not None
        reference = origin if moved_in_time and track.time_reference is not None else None
        write_stem(track, apply_repair(audio, track, stem, plan), target, sr=sr, time_reference=reference)
        operations.extend(
            {"track": track.name, "repair": op.kind, "value": op.value, "unit": op.unit, "reason": op.reason}
            for op in stem.operations
        )
        if stem.realign:
            edits.extend(_edit_rows(track.name, plan.align, 0 if stem.place else track.offset, sr))

    def report() -> dict[str, object]:
        return {
            "schema": "sessionfix.edits/1",
            "session": session.path.resolve().name,
            "sample_rate": sr,
            "repairs": list(plan.kinds),
            "operations": operations,
            "follow": plan.align.follow,
            "moved_tracks": sorted(s.track for s in plan.stems if s.realign),
            "edits": edits,
            "skipped_hits_s": [round(p / sr, 6) for p in plan.align.skipped],
            "left_for_the_engineer": [{"track": f.track, "kind": f.kind, "message": f.message} for f in plan.left],
        }

    rendered, copied = _deliver(folder, out, tracks, repaired, report, force=force, progress=progress)
    slid = any(op.kind == "track_offset" for stem in plan.stems for op in stem.operations)
    earlier = Earlier(before, frozenset(copied), negated=frozenset(negated))
    after = scan(out, progress=progress, jobs=jobs, parts=parts or slid, earlier=earlier)
    return Repaired(before=before, plan=plan, after=after, out=out, rendered=tuple(rendered), copied=tuple(copied))


def _deliver(
    folder: Path,
    out: Path,
    tracks: dict[Path, Track],
    write: Callable[[Track, Path], None],
    report: Callable[[], dict[str, object]],
    *,
    force: bool,
    progress: Progress,
    beside: dict[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """Every file of the session at `folder` into `out`, at its place in the folder: the stems in
    `tracks` (by path) written by `write(track, target)`, every other file copied byte for byte, then
    EDITS_NAME from `report()` and the text files `beside` (name -> text); built in a staging folder and
    renamed into place, so `out` is complete or untouched. Returns the names written and the names copied."""
    rendered, copied = [], []
    with staged_folder(out, force=force) as staging:
        files = _session_files(folder)  # every regular file, at its place in the folder (a DAW's tree too)
        for i, relative in enumerate(files):
            progress("Writing stems", i, len(files))
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            track = tracks.get(folder / relative)
            if track is None:
                copy_file(folder / relative, staging / relative)
                copied.append(printable(relative.name))
            else:
                write(track, staging / relative)
                rendered.append(track.name)
        (staging / EDITS_NAME).write_text(json.dumps(report(), indent=1) + "\n", encoding="utf-8")
        for name, text in (beside or {}).items():  # a file name that is not UTF-8 keeps its own bytes
            (staging / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    return rendered, copied


def _session_files(folder: Path) -> list[Path]:
    """Every regular file (or link to one) under `folder`, relative to it, hidden ones left out; never a
    FIFO, a device or a dangling link, and links to folders are not followed."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            try:
                regular = not name.startswith(".") and path.is_file()
            except OSError:
                regular = False
            if regular:
                files.append(path.relative_to(folder))
    return files


def _session_audio(result: Scan) -> set[str]:
    """Names the session holds as stems, readable or not (the ones it could not use are findings)."""
    unusable = ("unreadable", "unsupported", "invalid_samples")
    return {t.name for t in result.session.tracks} | {
        f.track
        for f in result.session.findings + result.qc.findings
        if f.kind in unusable and f.track and Path(f.track).suffix.lower() in AUDIO_SUFFIXES
    }


def _edit_rows(name: str, plan: EditPlan, offset: int, sr: int) -> list[dict[str, object]]:
    """The plan's cuts of one track, in the track's own samples (its BWF offset taken off)."""
    return [
        {
            "track": name,
            "cut": int(cut - offset),
            "cut_s": round(cut / sr, 6),
            "move_samples": round(move, 4),
            "move_ms": round(move / sr * 1e3, 4),
            "crossfade_samples": plan.crossfade,
        }
        for cut, move in zip(plan.cuts, plan.moves, strict=True)
    ]
