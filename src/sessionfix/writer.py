"""Writing stems: in the source's format, through a temporary file renamed when complete.

WAV metadata chunks (BWF `bext` with its time reference, `iXML`, markers) are carried over from the
source into the re-rendered file, so a DAW places the new stem where the old one was.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from .errors import OutputError
from .session import Track

# Chunks soundfile writes itself; everything else in a source WAV is metadata to carry over.
_AUDIO_CHUNKS = {b"fmt ", b"data", b"fact", b"ds64", b"PEAK"}


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_name(final: Path) -> str:
    """A hidden name beside `final` for work in progress: short, whatever the length of `final`'s name."""
    return f".sessionfix-{secrets.token_hex(6)}.tmp"


def _os_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path} ({exc.strerror or exc}); free some space or choose a writable folder")


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final` to write to; renamed to `final` when the block completes,
    removed if it fails, so `final` is either the old file, the complete new one, or absent. The file
    gets the permissions the umask gives a new file."""
    tmp = final.parent / _temporary_name(final)
    try:
        tmp.touch(mode=0o666, exist_ok=False)
    except OSError as exc:
        raise _os_error(final, exc) from exc
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _os_error(final, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(out: Path, *, force: bool) -> Iterator[Path]:
    """A new folder beside `out` to build a result in, renamed to `out` when the block completes, removed
    if it fails: `out` is then complete, or as it was. An existing `out` that is not empty is replaced only
    with `force` (it stays as it was until the new one is complete)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; give a folder for the output")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"{out} is not empty; give a new or empty folder, or add --force to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".sessionfix-", suffix=".tmp", dir=out.parent))
        os.chmod(staging, 0o777 & ~_umask())
    except OSError as exc:
        raise _os_error(out, exc) from exc
    try:
        yield staging
        if out.exists():
            old = out.parent / _temporary_name(out)
            os.rename(out, old)
            os.rename(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _os_error(out, exc) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _chunk_table(fh: BinaryIO) -> list[tuple[bytes, int, int]] | None:
    """(id, payload offset, payload size) of each chunk of a plain RIFF/WAVE file, read from its headers
    alone (the payloads are skipped); None for anything else."""
    head = fh.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    table = []
    while len(header := fh.read(8)) == 8:
        cid, size = struct.unpack("<4sI", header)
        table.append((cid, fh.tell(), size))
        fh.seek(size + (size & 1), os.SEEK_CUR)
    return table


def _riff_chunks(buffer: io.BytesIO) -> list[tuple[bytes, memoryview]] | None:
    """(id, payload) of each chunk of a plain RIFF/WAVE file held in memory (payloads are views of the
    buffer, not copies); None for anything else."""
    buffer.seek(0)
    table = _chunk_table(buffer)
    view = buffer.getbuffer()
    return None if table is None else [(cid, view[at : at + size]) for cid, at, size in table]


def _metadata_chunks(path: Path) -> list[tuple[bytes, bytes]] | None:
    """(id, payload) of the chunks of a plain RIFF/WAVE file on disk that are not its audio (the data
    chunk is skipped, never read); None for anything else."""
    with open(os.fsencode(path), "rb") as fh:
        table = _chunk_table(fh)
        if table is None:
            return None
        chunks = []
        for cid, at, size in table:
            if cid not in _AUDIO_CHUNKS:
                fh.seek(at)
                chunks.append((cid, fh.read(size)))
        return chunks


BEXT_TIME_REFERENCE = 338  # bytes into a bext chunk: Description 256, Originator 32, its reference 32, date, time


def _with_metadata(
    new: io.BytesIO, carried: list[tuple[bytes, bytes]] | None, time_reference: int | None = None
) -> list[bytes | memoryview]:
    """The new WAV (in memory) as the pieces to write: its audio with the source's metadata chunks
    (`carried`, from `_metadata_chunks`) placed before its data chunk; with `time_reference` (samples
    since midnight), the BWF time reference set to it."""
    new_chunks = _riff_chunks(new)
    if new_chunks is None or not carried:
        return [new.getbuffer()]
    if time_reference is not None:
        carried = [(cid, _retimed(payload, time_reference) if cid == b"bext" else payload) for cid, payload in carried]
    ordered = [c for c in new_chunks if c[0] == b"fmt "] + carried + [c for c in new_chunks if c[0] != b"fmt "]
    pieces: list[bytes | memoryview] = []
    for cid, payload in ordered:
        pieces += [cid + struct.pack("<I", len(payload)), payload] + ([b"\0"] if len(payload) & 1 else [])
    size = 4 + sum(len(p) for p in pieces)
    return [b"RIFF" + struct.pack("<I", size) + b"WAVE", *pieces]


def _retimed(bext: bytes, time_reference: int) -> bytes:
    """A bext chunk's payload with its time reference (a 64-bit sample count) replaced."""
    if len(bext) < BEXT_TIME_REFERENCE + 8:
        return bext
    stamp = struct.pack("<Q", time_reference)
    return bext[:BEXT_TIME_REFERENCE] + stamp + bext[BEXT_TIME_REFERENCE + 8 :]


def write_stem(
    track: Track, audio: np.ndarray, path: Path, *, sr: int | None = None, time_reference: int | None = None
) -> None:
    """Write `audio` (frames, channels) to `path` in the track's format and with its WAV metadata; at
    `sr` (default the track's rate), with the BWF time reference set to `time_reference` if given. A WAV
    with metadata chunks to carry is built in memory with them and written once (the source's audio is not
    read again); any other file libsndfile writes itself."""
    rate = sr or track.sr
    try:
        carried = _metadata_chunks(track.path) if track.container == "WAV" else None
        if not carried:  # nothing to carry over: libsndfile writes the file itself
            sf.write(os.fsencode(path), audio, rate, subtype=track.subtype, format=track.container)
            return
        buffer = io.BytesIO()
        sf.write(buffer, audio, rate, subtype=track.subtype, format="WAV")
        pieces = _with_metadata(buffer, carried, time_reference)
        with open(os.fsencode(path), "wb") as fh:
            for piece in pieces:
                fh.write(piece)
    except (OSError, sf.LibsndfileError) as exc:
        raise OutputError(f"cannot write {path} ({exc}); free some space or choose a writable folder") from exc


def copy_file(source: Path, path: Path) -> None:
    """Copy a file byte for byte."""
    try:
        shutil.copyfile(source, path)
        os.chmod(path, 0o666 & ~_umask())
    except OSError as exc:
        raise _os_error(path, exc) from exc
