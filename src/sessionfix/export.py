"""Exports a DAW opens: align's edits as a REAPER project, the kit's detected hits as a MIDI file.

Conventions
- The REAPER project references the session's original files and rebuilds the realignment as
  non-destructive items: one track per stem, the moved tracks split into one item per edit region.
  Item k of a moved track starts `crossfade` samples before its output boundary round(cut + move)
  (that overlap is the crossfade: the earlier item fades out, the later fades in, both equal-power),
  and its source offset is its position less its move, so a sub-sample move is kept exactly in the
  offset (seconds, 12 decimals) while positions stay on whole samples of the session rate.
- The MIDI file is type 1 at PPQ ticks per quarter note: a tempo track following the drummer's beat
  map (the first downbeat on a bar line), then one track per drum on the GM drum channel (10), one
  note per detected hit, its velocity from the hit's level against the drum's loudest (VELOCITY_PER_DB).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import mido
import numpy as np

from .grid import Tempo
from .kit import KitAnalysis
from .realign import EditPlan
from .roles import Role
from .session import Session, Track

# ------------------------------------------------------------------------------------------ RPP


@dataclass(frozen=True)
class Item:
    """One item of a track in the project, in samples of the session rate on the timeline."""

    position: int  # timeline sample where the item starts
    length: int  # samples
    source_offset: float  # samples into the source file where the item starts (fractional)
    fade_in: int  # samples
    fade_out: int  # samples


def track_items(track: Track, plan: EditPlan) -> list[Item]:
    """The items that play `track` as `realign.render` renders it: one for an unmoved track, one per
    region of the plan for a moved one (timeline samples; the file starts at its BWF offset)."""
    start, n = track.offset, track.frames
    if plan.empty or track.name not in plan.tracks:
        return [Item(position=start, length=n, source_offset=0.0, fade_in=0, fade_out=0)]
    edges = np.clip(np.concatenate(([0], plan.boundaries() - start, [n])), 0, n).astype(int)
    moves = (0.0, *plan.moves)
    fade = plan.crossfade
    items = []
    for k, move in enumerate(moves):
        lo = int(edges[k]) if k == 0 else max(int(edges[k]) - fade, 0)
        hi = int(edges[k + 1])
        if hi <= lo:
            continue
        source = lo - move
        skip = max(0, math.ceil(-source))  # an item cannot start before its file: start it later
        lo, source = lo + skip, source + skip
        fade_in = 0 if k == 0 else max(0, min(fade, int(edges[k]) - lo))
        fade_out = 0 if k == len(moves) - 1 else min(fade, hi - lo)
        items.append(Item(start + lo, hi - lo, source, fade_in, fade_out))
    return items


def _quoted(text: str) -> str:
    """A string as RPP writes it: in double quotes, or single or back quotes when it holds those (a line
    break, which no RPP string can hold, becomes a space)."""
    text = text.replace("\r", " ").replace("\n", " ")
    for quote in ('"', "'", "`"):
        if quote not in text:
            return f"{quote}{text}{quote}"
    return '"' + text.replace('"', "'") + '"'


def _seconds(samples: float, sr: int) -> str:
    return f"{samples / sr:.12f}"


def rpp_project(session: Session, plan: EditPlan) -> str:
    """A REAPER project (RPP text) that plays the session's original files with `plan` applied."""
    sr = session.sr or 48000
    lines = ['<REAPER_PROJECT 0.1 "6.0" 0', f"  SAMPLERATE {sr} 0 0", "  AUTOXFADE 0"]
    for track in session.tracks:
        lines += ["  <TRACK", f"    NAME {_quoted(track.name)}", f"    NCHAN {max(2, track.channels)}"]
        for k, item in enumerate(track_items(track, plan)):
            lines += [
                "    <ITEM",
                f"      POSITION {_seconds(item.position, sr)}",
                f"      LENGTH {_seconds(item.length, sr)}",
                "      LOOP 0",
                f"      FADEIN 1 {_seconds(item.fade_in, sr)} 0 1 0 0 0",
                f"      FADEOUT 1 {_seconds(item.fade_out, sr)} 0 1 0 0 0",
                f"      NAME {_quoted(f'{track.name} {k + 1}')}",
                f"      SOFFS {item.source_offset / track.sr:.12f}",
                "      PLAYRATE 1 1 0 -1 0 0.0025",
                "      <SOURCE WAVE" if track.container != "FLAC" else "      <SOURCE FLAC",
                f"        FILE {_quoted(str(track.path.resolve()))}",
                "      >",
                "    >",
            ]
        lines.append("  >")
    lines.append(">")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- MIDI
PPQ = 960
DRUM_CHANNEL = 9  # GM channel 10
GM_NOTES = {"kick": 36, "snare": 38, "hihat": 42, "cymbal": 49}
DRUM_NAMES = {"kick": "Kick", "snare": "Snare", "hihat": "Hi-hat", "cymbal": "Cymbal", "tom": "Tom"}
GM_TOMS = (50, 48, 47, 45, 43, 41)  # high tom to low floor tom
VELOCITY_PER_DB = 3.0  # the loudest hit of a drum is 127; 42 dB below it is 1
NOTE_TICKS = PPQ // 8  # a thirty-second note: drum samplers play the whole hit whatever the length


def drum_tracks(kit: KitAnalysis, roles: dict[str, Role]) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    """(name, GM note, hit positions in samples, levels dB) per drum: the close mics on one drum
    (Kick In + Kick Out) are one drum, its hits those of the mic that heard most of them; toms high to
    low (`_tom_height`)."""
    layout = kit.layout
    sibling_of = {name: group for group in layout.siblings for name in group}
    drums: list[tuple[str, str]] = []  # (close mic whose hits are used, instrument)
    seen: set[str] = set()
    for name in layout.close:
        if name in seen or name not in kit.hits:
            continue
        group = [n for n in sibling_of.get(name, (name,)) if n in kit.hits]
        seen.update(group)
        most = max(group, key=lambda n: len(kit.hits[n]))  # the first of equals: layout order
        drums.append((most, roles.get(most, "other")))
    toms = sorted((name for name, instrument in drums if instrument == "tom"), key=_tom_height)
    tom_notes = dict(zip(toms, _spread(GM_TOMS, len(toms)), strict=True))
    out = []
    for name, instrument in drums:
        note = tom_notes.get(name, GM_NOTES.get(instrument))
        if note is None:
            continue
        hits = kit.hits[name]
        # a stroke heard twice (an edit's flam) is one hit, as the report lists it
        pair = next((p for p in kit.pairs if p.close == name), None)
        strokes = ~pair.repeated if pair is not None else np.ones(len(hits), bool)
        out.append((name, note, hits.positions[strokes], hits.levels_db[strokes]))
    return out


def _tom_height(name: str) -> tuple[int, str]:
    """Sort key, high toms first: by the word the name holds (hi/rack, mid, low, floor), then the name
    (Tom 1 before Tom 2)."""
    words = re.findall(r"[a-z]+", name.lower())
    for rank, hints in enumerate((("hi", "high", "rack"), ("mid",), ("lo", "low"), ("floor", "fl"))):
        if any(w in hints for w in words):
            return (2 * rank, name)
    return (3, name)  # no hint: after the high and mid toms, before the low ones


def _spread(notes: tuple[int, ...], count: int) -> list[int]:
    """`count` notes spread evenly from the first of `notes` to the last (one: the middle)."""
    if count <= 1:
        return [notes[(len(notes) - 1) // 2]] * count
    return [notes[round(i * (len(notes) - 1) / (count - 1))] for i in range(count)]


def _tick_map(tempo: Tempo | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Knots (seconds, ticks) of the piecewise-linear map from time to MIDI ticks, one quarter note per
    beat of the drummer's map, and the beats before the first downbeat (a pickup bar, so the downbeat
    starts a bar). The time before the map's first beat is whole beats at a tempo that fills it."""
    if tempo is None or len(tempo.beats_s) < 2:
        return np.array([0.0, 0.5]), np.array([0.0, float(PPQ)]), 0  # 120 bpm
    beats = tempo.beats_s
    first = int(np.searchsorted(beats, 0.0))
    beats, downbeat = beats[first:], max(tempo.downbeat - first, 0)
    if len(beats) < 2:
        return np.array([0.0, 0.5]), np.array([0.0, float(PPQ)]), 0
    lead = 0 if beats[0] < 1e-6 else max(1, round(beats[0] / (beats[1] - beats[0])))  # beats before the map
    times = np.concatenate(([0.0], beats)) if lead else beats
    ticks = (np.arange(len(beats), dtype=float) + lead) * PPQ
    return times, np.concatenate(([0.0], ticks)) if lead else ticks, lead + downbeat


def _delta_times(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    """A MIDI track from (absolute tick, message) in time order."""
    track, now = mido.MidiTrack(), 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    return track


def _ticks(t_s: np.ndarray, knots: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Ticks of each time: interpolated between the knots, extrapolated at the last beat period."""
    times, ticks = knots
    slope = (ticks[-1] - ticks[-2]) / (times[-1] - times[-2])
    inside = np.interp(t_s, times, ticks)
    after = ticks[-1] + (t_s - times[-1]) * slope
    return np.round(np.where(t_s > times[-1], after, inside)).astype(np.int64)


def midi_file(kit: KitAnalysis, roles: dict[str, Role], sr: int) -> mido.MidiFile:
    """The kit's detected hits as a type-1 MIDI file on the drummer's tempo map."""
    times, ticks, pickup = _tick_map(kit.tempo)
    knots = (times, ticks)
    meter = kit.tempo.meter if kit.tempo is not None else 4
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    conductor = [(0, mido.MetaMessage("track_name", name="Tempo (sessionfix)"))]
    if pickup % meter:  # a pickup bar, so that the first downbeat starts a bar
        conductor.append((0, mido.MetaMessage("time_signature", numerator=pickup % meter, denominator=4)))
    conductor.append(((pickup % meter) * PPQ, mido.MetaMessage("time_signature", numerator=meter, denominator=4)))
    for k in range(len(times) - 1):
        seconds_per_beat = (times[k + 1] - times[k]) / (ticks[k + 1] - ticks[k]) * PPQ
        conductor.append((int(ticks[k]), mido.MetaMessage("set_tempo", tempo=int(round(seconds_per_beat * 1e6)))))
    midi.tracks.append(_delta_times(sorted(conductor, key=lambda e: e[0])))
    for name, note, positions, levels in drum_tracks(kit, roles):
        events: list[tuple[int, mido.Message | mido.MetaMessage]] = [
            (0, mido.MetaMessage("track_name", name=f"{DRUM_NAMES[roles[name]]} ({name})"))
        ]
        velocities = np.clip(np.round(127 + VELOCITY_PER_DB * (levels - levels.max())), 1, 127).astype(int)
        onsets = _ticks(positions / sr, knots)
        # each note ends before the next one starts (two hits on one tick would be one note: one is kept)
        ends = np.minimum(onsets + NOTE_TICKS, np.append(onsets[1:], np.iinfo(np.int64).max))
        for tick, end, velocity in zip(onsets, ends, velocities, strict=True):
            if end > tick:
                on = mido.Message("note_on", channel=DRUM_CHANNEL, note=note, velocity=int(velocity))
                off = mido.Message("note_off", channel=DRUM_CHANNEL, note=note, velocity=0)
                events += [(int(tick), on), (int(end), off)]
        midi.tracks.append(_delta_times(events))
    return midi
