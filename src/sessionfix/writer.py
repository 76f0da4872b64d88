"""Writing stems: in the source's format, through a temporary file renamed when complete.

WAV metadata chunks (BWF `bext` with its time reference, `iXML`, markers) are carried over from the
source into the re-rendered file, so a DAW places the new stem where the old one was.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import OutputError
from .session import Track

# Chunks soundfile writes itself; everything else in a source WAV is metadata to carry over.
_AUDIO_CHUNKS = {b"fmt ", b"data", b"fact", b"ds64", b"PEAK"}


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final` to write to; renamed to `final` when the block completes,
    removed if it fails, so `final` is either the old file, the complete new one, or absent."""
    folder = final.parent
    try:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".sessionfix-tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write into {folder} ({exc.strerror}); choose a writable folder") from exc
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """(id, payload) of each chunk of a plain RIFF/WAVE file; None for anything else."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack("<4sI", data[pos : pos + 8])
        chunks.append((cid, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def _with_metadata(new: bytes, source: bytes) -> bytes:
    """The new WAV's audio with the source's metadata chunks, placed before its data chunk."""
    new_chunks, old_chunks = _riff_chunks(new), _riff_chunks(source)
    if new_chunks is None or old_chunks is None:
        return new
    carried = [(cid, payload) for cid, payload in old_chunks if cid not in _AUDIO_CHUNKS]
    if not carried:
        return new
    ordered = [c for c in new_chunks if c[0] == b"fmt "] + carried + [c for c in new_chunks if c[0] != b"fmt "]
    body = b"".join(cid + struct.pack("<I", len(p)) + p + (b"\0" if len(p) & 1 else b"") for cid, p in ordered)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def write_stem(track: Track, audio: np.ndarray, folder: Path) -> Path:
    """Write `audio` (frames, channels) as `folder/track.name` in the track's format; returns the path."""
    final = folder / track.name
    with atomic_path(final) as tmp:
        sf.write(str(tmp), audio, track.sr, subtype=track.subtype, format=track.container)
        if track.container == "WAV":
            tmp.write_bytes(_with_metadata(tmp.read_bytes(), track.path.read_bytes()))
    return final


def copy_stem(source: Path, folder: Path) -> Path:
    """Copy a file byte for byte into `folder` (same name), atomically."""
    final = folder / source.name
    with atomic_path(final) as tmp:
        shutil.copyfile(source, tmp)
    return final
