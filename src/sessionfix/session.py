"""Load a session folder: metadata of every stem, audio only on request, in blocks.

Conventions
- Positions are integer samples at the track's own sample rate; `Track.offset` places the stem on the
  session timeline (from its BWF time reference, 0 for the earliest stem).
- Audio comes back as float32, shape (frames,) for mono reads and (frames, channels) otherwise.
- Files that cannot be used become `Finding`s (`unreadable`, `unsupported`), never exceptions; only a
  session that cannot be scanned at all raises a `SessionError`.
"""

from __future__ import annotations

import os
import stat
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from numpy.lib.stride_tricks import sliding_window_view

from .errors import NoAudio, SessionNotFound
from .findings import Finding

CONFIG_NAME = "sessionfix.toml"  # read by sessionfix.config; never a stem
EDITS_NAME = "sessionfix-edits.json"  # what align and repair did, beside their output; never a stem
RPP_NAME = "sessionfix-edits.rpp"  # align's edits as a REAPER project on the original files
AUDIO_SUFFIXES = {".wav", ".wave", ".bwf", ".rf64", ".aif", ".aiff", ".aifc", ".flac"}
MIN_SR, MAX_SR = 8000, 768000  # Hz: what audio interfaces record; a header outside it is not a stem
MAX_HOURS = 24.0  # a stem declaring more is a damaged or hostile header, not a recording
# FLAC's best case is a constant signal, a few bytes per 4096-sample block: no real stem declares more
# samples than this many per byte of file
MAX_SAMPLES_PER_BYTE = 2048


def printable(text: str) -> str:
    """`text` safe to show anywhere: bytes that were not UTF-8 (kept by the OS layer as lone surrogates)
    shown as \\xNN, control characters (escape sequences, newlines, C1) shown as \\xNN, everything else as is.
    Names are data: they never move a cursor, clear a screen or forge a report line."""
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or code < 0x20 or 0x7F <= code <= 0x9F or not ch.isprintable():
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


# A gap between two windows shorter than this is decoded rather than sought past: a seek and read cost
# about as much as decoding 0.1 s (700 windows over 5 min: 56 ms read through 0.1 s gaps, 76 ms through 1 s)
READ_THROUGH_S = 0.1
READ_BLOCK = 1 << 18  # samples decoded at a time when reading through gaps
BLOCK_FRAMES = 1 << 16  # ~1.4 s at 48 kHz: large enough to amortise decoding, small in memory


# libsndfile subtypes in the words a mix engineer uses
SAMPLE_FORMATS = {
    "PCM_S8": "8-bit",
    "PCM_U8": "8-bit",
    "PCM_16": "16-bit",
    "PCM_24": "24-bit",
    "PCM_32": "32-bit",
    "FLOAT": "32-bit float",
    "DOUBLE": "64-bit float",
    "ULAW": "u-law",
    "ALAW": "A-law",
    "ALAC_16": "16-bit ALAC",
    "ALAC_20": "20-bit ALAC",
    "ALAC_24": "24-bit ALAC",
    "ALAC_32": "32-bit ALAC",
}


def sample_format(subtype: str) -> str:
    """'24-bit', '32-bit float': a libsndfile subtype as a mix engineer names it."""
    return SAMPLE_FORMATS.get(subtype, subtype.replace("_", " ").lower())


@dataclass(frozen=True)
class Track:
    """One stem on disk. `name` is the file name, the track's identity in every report."""

    path: Path
    name: str
    sr: int
    channels: int
    frames: int
    subtype: str  # libsndfile subtype: PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE, ...
    container: str  # WAV, RF64, AIFF, FLAC, ...
    time_reference: int | None  # BWF time reference, samples since midnight; None without a bext chunk
    offset: int = 0  # samples from the session start to the stem's first sample

    @property
    def duration_s(self) -> float:
        return self.frames / self.sr

    @property
    def end(self) -> int:
        """Timeline position (samples) just after the stem's last sample."""
        return self.offset + self.frames


@dataclass(frozen=True)
class Session:
    """A folder of stems. `tracks` are the readable ones, sorted by name; `sr` the majority rate."""

    path: Path
    tracks: tuple[Track, ...]
    findings: tuple[Finding, ...]
    sr: int | None

    @property
    def frames(self) -> int:
        """Length of the session timeline in samples (at `sr`)."""
        return max((t.end for t in self.tracks if t.sr == self.sr), default=0)

    @property
    def duration_s(self) -> float:
        return self.frames / self.sr if self.sr else 0.0

    def track(self, name: str) -> Track:
        for t in self.tracks:
            if t.name == name:
                return t
        raise KeyError(name)


# ---------------------------------------------------------------------------------------- chunks
def _wav_chunks(path: Path) -> tuple[dict[bytes, tuple[int, int]], str | None]:
    """Chunk id -> (data offset, declared size) of a RIFF/RF64/BW64 file, and a truncation problem.

    The problem is a sentence when a chunk (usually `data`) claims more bytes than the file holds.
    """
    file_size = path.stat().st_size
    chunks: dict[bytes, tuple[int, int]] = {}
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[8:12] != b"WAVE":
            return chunks, None
        big_data_size = None
        pos = 12
        while pos + 8 <= file_size:
            fh.seek(pos)
            cid, size = struct.unpack("<4sI", fh.read(8))
            if cid == b"ds64":
                ds64 = fh.read(min(size, 28))
                if len(ds64) >= 16:
                    big_data_size = struct.unpack("<Q", ds64[8:16])[0]
            if cid == b"data" and size == 0xFFFFFFFF:
                # RF64 keeps the real size in ds64; a streaming writer that never came back to fill in
                # the size leaves 0xFFFFFFFF: the data runs to the end of the file
                size = big_data_size if big_data_size is not None else file_size - pos - 8
            chunks.setdefault(cid, (pos + 8, size))
            if pos + 8 + size > file_size:
                have = file_size - pos - 8
                return chunks, (
                    f"the file is truncated: its {cid.decode('latin-1').strip()} chunk "
                    f"declares {size} bytes but only {have} are there"
                )
            pos += 8 + size + (size & 1)
    return chunks, None


def _bwf_time_reference(path: Path, chunks: dict[bytes, tuple[int, int]]) -> int | None:
    """TimeReference (samples since midnight) from a bext chunk; None when absent."""
    if b"bext" not in chunks:
        return None
    start, size = chunks[b"bext"]
    if size < 346:
        return None
    with open(path, "rb") as fh:
        fh.seek(start + 338)  # Description 256 + Originator 32 + OriginatorReference 32 + Date 10 + Time 8
        low, high = struct.unpack("<II", fh.read(8))
    return (high << 32) | low


def _aiff_truncation(path: Path) -> str | None:
    """A sentence when an AIFF chunk claims more bytes than the file holds."""
    file_size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"FORM":
            return None
        pos = 12
        while pos + 8 <= file_size:
            fh.seek(pos)
            cid, size = struct.unpack(">4sI", fh.read(8))
            if pos + 8 + size > file_size:
                return (
                    f"the file is truncated: its {cid.decode('latin-1').strip()} chunk declares "
                    f"{size} bytes but only {file_size - pos - 8} are there"
                )
            pos += 8 + size + (size & 1)
    return None


# ------------------------------------------------------------------------------------------ load
def _unreadable(name: str, why: str) -> Finding:
    return Finding(
        kind="unreadable",
        severity="error",
        track=name,
        message=f"{name} cannot be used: {why}; re-export it from the source session",
    )


def open_track(path: Path) -> Track | Finding:
    """Metadata of one audio file, or an `unreadable`/`unsupported` finding saying why it cannot be used.

    The header is checked before any audio is read: a rate no interface records, or a length the file
    cannot hold or no recording has, is a finding (a hostile header must not size an allocation).
    """
    name = printable(path.name)
    try:
        info = sf.info(os.fsencode(path))  # bytes: a name that is not UTF-8 opens as it is on disk
        size = path.stat().st_size
    except (RuntimeError, sf.LibsndfileError) as exc:  # libsndfile's "Format not recognised" etc.
        return _unreadable(name, printable(str(exc).split(":")[-1].strip().rstrip(".")) or "not an audio file")
    except OSError as exc:
        return _unreadable(name, exc.strerror or str(exc))
    if info.frames <= 0:
        return _unreadable(name, "it holds no audio (zero length)")
    if not MIN_SR <= info.samplerate <= MAX_SR:
        return Finding(
            kind="unsupported",
            severity="error",
            track=name,
            message=f"{name} declares a sample rate of {info.samplerate} Hz, which no audio interface records; "
            "re-export it from the source session",
        )
    declared = info.frames * max(info.channels, 1)
    if info.frames > MAX_HOURS * 3600 * info.samplerate or declared > MAX_SAMPLES_PER_BYTE * max(size, 1):
        return _unreadable(
            name,
            f"its header declares {info.frames} frames ({info.frames / info.samplerate / 3600:.1f} h), "
            f"more than its {size} bytes can hold",
        )
    time_reference: int | None = None
    problem = None
    try:
        if info.format in ("WAV", "WAVEX", "RF64", "W64") or path.suffix.lower() in (".wav", ".bwf", ".rf64"):
            chunks, problem = _wav_chunks(path)
            time_reference = _bwf_time_reference(path, chunks)
        elif info.format in ("AIFF", "AIFC"):
            problem = _aiff_truncation(path)
    except OSError as exc:
        return _unreadable(name, exc.strerror or str(exc))
    if problem:
        return _unreadable(name, problem)
    return Track(
        path=path,
        name=name,
        sr=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        subtype=str(info.subtype),
        container=str(info.format),
        time_reference=time_reference,
    )


# Where a DAW keeps a session's audio when the folder given is the DAW's session folder (Pro Tools and
# Logic: "Audio Files"; REAPER: "Media"; others: "Audio").
STEM_FOLDERS = ("Audio Files", "Media", "Audio")


def stem_folder(folder: Path) -> Path:
    """The folder that holds the stems: `folder` itself, or its DAW audio folder when `folder` holds
    no audio file of its own (a Pro Tools, Logic or REAPER session folder)."""
    try:
        with os.scandir(folder) as entries:
            if any(Path(e.name).suffix.lower() in AUDIO_SUFFIXES for e in entries):
                return folder
    except OSError:
        return folder
    for name in STEM_FOLDERS:
        if (folder / name).is_dir():
            return folder / name
    return folder


def _file_kind(path: Path) -> str:
    """ "file" for a regular file (or a link to one), "folder", else why it is not a stem. Only the
    metadata is read: a FIFO or a device is never opened (opening one can wait forever)."""
    try:
        mode = os.stat(path).st_mode  # follows links
    except OSError as exc:
        if os.path.islink(path):
            return "is a link that leads nowhere (or round in a loop)"
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode):
        return "is a pipe (FIFO), not a file"
    return "is a device or socket, not a file"


def load_session(path: Path | str, *, exclude: frozenset[str] = frozenset()) -> Session:
    """Read the metadata of every stem in a session folder (no audio is decoded here).

    `exclude` names files to leave out (from sessionfix.toml). Raises `SessionNotFound` for a missing
    or unreadable folder, `NoAudio` when nothing in it is usable audio. Per-file problems become
    findings on the returned session.
    """
    folder = Path(path)
    if not folder.exists():
        raise SessionNotFound(f"{folder} does not exist; give the folder that holds the session's stems")
    if not folder.is_dir():
        raise SessionNotFound(f"{folder} is a file, not a folder; give the folder that holds the stems")
    try:
        entries = sorted(os.scandir(stem_folder(folder)), key=lambda e: e.name)
    except OSError as exc:
        raise SessionNotFound(f"{folder} cannot be read ({exc.strerror}); check its permissions") from exc
    folder_of_stems = stem_folder(folder)

    tracks: list[Track] = []
    findings: list[Finding] = []
    for entry in entries:
        name = printable(entry.name)
        if entry.name.startswith(".") or entry.name in (CONFIG_NAME, EDITS_NAME) or name in exclude:
            continue  # hidden files (.DS_Store, AppleDouble ._*), our config, user exclusions
        kind = _file_kind(folder_of_stems / entry.name)
        if kind == "folder":
            continue
        if kind != "file":
            findings.append(
                Finding(kind="unsupported", severity="warning", track=name, message=f"{name} {kind}; skipped")
            )
            continue
        if Path(entry.name).suffix.lower() not in AUDIO_SUFFIXES:
            findings.append(
                Finding(
                    kind="unsupported",
                    severity="info",
                    track=name,
                    message=f"{name} is not a WAV/AIFF/FLAC stem; skipped",
                )
            )
            continue
        opened = open_track(folder_of_stems / entry.name)
        (tracks if isinstance(opened, Track) else findings).append(opened)  # type: ignore[arg-type]

    missing = exclude - {printable(e.name) for e in entries}
    if missing:
        findings.append(
            Finding(
                kind="unsupported",
                severity="info",
                track=None,
                message=f"{CONFIG_NAME} excludes {', '.join(sorted(missing))}, which is not in the session",
            )
        )
    if not tracks:
        what = "no audio files" if not findings else "no readable audio files"
        raise NoAudio(f"{folder} holds {what}; give a folder of WAV, AIFF or FLAC stems")

    sr = Counter(t.sr for t in tracks).most_common(1)[0][0]
    # Stems start where their BWF time reference says, the earliest at 0; a stem without one starts
    # with the earliest (a plain WAV export starts at the session start).
    known = [Fraction(t.time_reference, t.sr) for t in tracks if t.time_reference is not None]
    origin_s = min(known, default=Fraction(0))  # exact, across sample rates
    placed = tuple(
        replace(t, offset=0 if t.time_reference is None else int(round(t.time_reference - origin_s * t.sr)))
        for t in tracks
    )
    return Session(path=folder, tracks=placed, findings=tuple(findings), sr=sr)


# ----------------------------------------------------------------------------------------- audio
def iter_blocks(track: Track, *, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """The file's samples in order, as float32 blocks of shape (frames, channels).

    Raises `OSError`/`RuntimeError` when the file cannot be decoded to its declared length.
    """
    read = 0
    with sf.SoundFile(os.fsencode(track.path)) as fh:
        remaining = fh.frames
        while remaining > 0:  # plain reads: SoundFile.blocks copies every block once more (decoding 1.5x slower)
            block = fh.read(min(block_frames, remaining), dtype="float32", always_2d=True)
            if not len(block):
                break
            read += len(block)
            remaining -= len(block)
            yield block
    if read < track.frames:
        raise RuntimeError(f"only {read} of {track.frames} frames could be decoded")


def read(
    track: Track,
    *,
    start: int | None = None,
    frames: int | None = None,
    mono: bool = True,
    handle: sf.SoundFile | None = None,
) -> np.ndarray:
    """Audio on the session timeline: `frames` samples from timeline position `start` (samples); by
    default the stem itself (from its own offset: a stem placed hours into the day costs no more).

    Positions outside the stem read as zeros, so stems with different BWF offsets line up.
    Mono reads average the channels. `handle`: the stem's file already open (`opened`), else it is
    opened for this read.
    """
    if start is None:
        start = track.offset
    if frames is None:
        frames = track.end - start
    out = np.zeros((max(frames, 0), track.channels), dtype=np.float32)
    lo = max(start, track.offset)
    hi = min(start + frames, track.end)
    if hi > lo:
        with sf.SoundFile(os.fsencode(track.path)) if handle is None else nullcontext(handle) as fh:
            fh.seek(lo - track.offset)
            got = fh.read(hi - lo, dtype="float32", always_2d=True)
        out[lo - start : lo - start + len(got)] = got
    return _mono(out) if mono else out


def _mono(frames: np.ndarray) -> np.ndarray:
    """The mean of the channels of (samples, channels) audio; a mono file's one channel as it is."""
    return frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1)


def read_spans(track: Track, firsts: np.ndarray, lasts: np.ndarray) -> np.ndarray:
    """Mono samples of the spans [firsts[i], lasts[i]) (timeline positions, in order, not overlapping),
    concatenated (float32); positions outside the stem read as zeros. One open file; the rest of the
    file is never decoded, but a gap under READ_THROUGH_S between two spans is (cheaper than a seek)."""
    firsts, lasts = np.asarray(firsts, np.int64), np.asarray(lasts, np.int64)
    out = np.zeros(int(np.sum(lasts - firsts)), dtype=np.float32)
    if not len(firsts):
        return out
    at = np.concatenate(([0], np.cumsum(lasts - firsts)))  # where each span starts in `out`
    breaks = np.flatnonzero(firsts[1:] - lasts[:-1] > int(READ_THROUGH_S * track.sr)) + 1
    with sf.SoundFile(os.fsencode(track.path)) as fh:
        for group in np.split(np.arange(len(firsts)), breaks):
            first, last = int(firsts[group[0]]), int(lasts[group[-1]])
            lo, hi = max(first, track.offset), min(last, track.end)
            if hi <= lo:
                continue
            fh.seek(lo - track.offset)
            if len(group) == 1 and track.channels == 1:  # decoded straight into place
                into = out[at[group[0]] + lo - first : at[group[0]] + hi - first, None]
                fh.read(hi - lo, dtype="float32", always_2d=True, out=into)
                continue
            # the group with its gaps, READ_BLOCK samples at a time (memory holds a block, not the group), and
            # the parts of its spans in each block copied out
            for block_lo in range(lo, hi, READ_BLOCK):
                block_hi = min(block_lo + READ_BLOCK, hi)
                block = _mono(fh.read(block_hi - block_lo, dtype="float32", always_2d=True))
                block_hi = block_lo + len(block)  # (a short read leaves zeros)
                for k in group[(lasts[group] > block_lo) & (firsts[group] < block_hi)]:
                    a, b = max(int(firsts[k]), block_lo), min(int(lasts[k]), block_hi)
                    out[at[k] + a - firsts[k] : at[k] + b - firsts[k]] = block[a - block_lo : b - block_lo]
    return out


def read_windows(track: Track, starts: np.ndarray, frames: int) -> np.ndarray:
    """Mono windows of `frames` samples at timeline positions `starts`, shape (len(starts), frames).

    One open file for all windows, read in position order; the rest of the file is never decoded.
    Positions outside the stem read as zeros.
    """
    if not len(starts) or frames <= 0:
        return np.zeros((len(starts), max(frames, 0)), dtype=np.float32)
    order = np.argsort(starts, kind="stable")
    ordered = np.asarray(starts, np.int64)[order]
    firsts, lasts, stretch = _union(ordered, frames)  # overlapping windows are one span, read once
    spans = read_spans(track, firsts, lasts)
    offsets = np.concatenate(([0], np.cumsum(lasts - firsts)[:-1]))  # where each span starts in `spans`
    at = np.empty(len(ordered), np.int64)  # where each window starts in `spans`, in the order asked
    at[order] = offsets[stretch] + ordered - firsts[stretch]
    return sliding_window_view(spans, frames)[at]


def _union(ordered: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stretches [firsts, lasts) that windows of `length` samples at sorted positions `ordered` cover,
    overlapping or touching windows merged into one; and the index of each window's stretch."""
    if not len(ordered):
        return ordered, ordered, np.zeros(0, np.int64)
    stretch = np.concatenate(([0], np.cumsum(np.diff(ordered) > length)))
    heads = np.flatnonzero(np.diff(stretch, prepend=-1))
    tails = np.append(heads[1:] - 1, len(ordered) - 1)
    return ordered[heads], ordered[tails] + length, stretch


class TrackAudio:
    """A stem's mono audio on the session timeline, decoded on demand: `len()` and `[a:b]` slices (float32,
    zeros outside the stem) like a numpy array, and `windows`. A stage that works in windows then holds
    a window of a long track, never the whole of it."""

    def __init__(
        self, track: Track, *, start: int | None = None, frames: int | None = None, handle: sf.SoundFile | None = None
    ) -> None:
        self.track = track
        self.start = track.offset if start is None else start
        self.frames = track.end - self.start if frames is None else frames
        self.handle = handle  # the file held open for its slices (`opened`), else opened per slice

    def __len__(self) -> int:
        return max(self.frames, 0)

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("TrackAudio reads contiguous slices only")
        lo, hi, _ = key.indices(len(self))
        return read(self.track, start=self.start + lo, frames=max(hi - lo, 0), handle=self.handle)

    def windows(self, starts: np.ndarray, frames: int) -> np.ndarray:
        """Windows of `frames` samples at positions `starts` (samples into this audio), zeros outside."""
        return read_windows(self.track, self.start + np.asarray(starts, np.int64), frames)


class HeldWindows(TrackAudio):
    """A TrackAudio that decodes the stretches `before` to `after` samples around each of `centres`
    (samples into this audio) once and serves the windows inside them from memory; any other read decodes
    as TrackAudio does (the same samples either way). Memory: the stretches' union, never more than the
    track, whatever the overlap of the windows."""

    def __init__(self, audio: TrackAudio, centres: np.ndarray, *, before: int, after: int) -> None:
        super().__init__(audio.track, start=audio.start, frames=audio.frames)
        # overlapping or touching stretches are one: (start, end) of each, samples into this audio
        self.held_starts, self.held_ends, _ = _union(np.unique(np.asarray(centres, np.int64)) - before, before + after)
        self.held_at = np.concatenate(([0], np.cumsum(self.held_ends - self.held_starts)))
        self.held = read_spans(self.track, self.start + self.held_starts, self.start + self.held_ends)

    def windows(self, starts: np.ndarray, frames: int) -> np.ndarray:
        starts = np.asarray(starts, np.int64)
        if not len(self.held_starts) or frames <= 0:  # nothing held
            return super().windows(starts, frames)
        k = np.searchsorted(self.held_starts, starts, side="right") - 1
        inside = (k >= 0) & (starts + frames <= self.held_ends[np.maximum(k, 0)])
        if not inside.any():
            return super().windows(starts, frames)
        at = self.held_at[k[inside]] + starts[inside] - self.held_starts[k[inside]]
        if inside.all():
            return sliding_window_view(self.held, frames)[at]
        out = np.empty((len(starts), frames), np.float32)
        out[inside] = sliding_window_view(self.held, frames)[at]
        out[~inside] = super().windows(starts[~inside], frames)
        return out


Audio = np.ndarray | TrackAudio  # what an analysis stage reads: an array, or a stem decoded on demand


class Pending:
    """The samples of a stream fed a piece at a time, from stream position `start` on: joined only when a
    span of them is taken, and let go before a position no longer needed (a stage fed a stem as another
    pass decodes it holds a block, not the track)."""

    def __init__(self) -> None:
        self.pieces: list[np.ndarray] = []
        self.start = 0  # stream position of the first sample held
        self.end = 0  # stream position after the last sample fed

    def append(self, samples: np.ndarray) -> None:
        self.pieces.append(samples)
        self.end += len(samples)

    def span(self, lo: int, hi: int) -> np.ndarray:
        """Samples [lo, hi) of the stream (start <= lo <= hi <= end), a view of the joined pieces."""
        if len(self.pieces) > 1:
            self.pieces = [np.concatenate(self.pieces)]
        return self.pieces[0][lo - self.start : hi - self.start] if self.pieces else np.zeros(0, np.float32)

    def drop_before(self, position: int) -> None:
        """Let go of the samples before stream position `position`."""
        self.pieces = [self.span(position, self.end)]
        self.start = position


@contextmanager
def opened(signal: Audio) -> Iterator[Audio]:
    """`signal` for many short slices: a TrackAudio's file held open meanwhile (opening it for each read
    costs 0.1 ms, as much as decoding a note's span: a bass line's 600 notes took 0.2 s, 0.13 s so);
    an array as it is. The same samples either way (a HeldWindows' windows are then decoded again)."""
    if not isinstance(signal, TrackAudio):
        yield signal
        return
    with sf.SoundFile(os.fsencode(signal.track.path)) as handle:
        yield TrackAudio(signal.track, start=signal.start, frames=signal.frames, handle=handle)


def windows(signal: Audio, starts: np.ndarray, frames: int) -> np.ndarray:
    """Float32 windows of `frames` samples at `starts` (samples) of an array or a TrackAudio, shape
    (len(starts), frames); samples outside the signal are zeros."""
    if isinstance(signal, TrackAudio):
        return signal.windows(starts, frames)
    index = np.asarray(starts, np.int64)[:, None] + np.arange(frames)[None, :]
    inside = (index >= 0) & (index < len(signal))
    out = np.zeros(index.shape, np.float32)
    out[inside] = signal[index[inside]]
    return out
