"""The `sessionfix.scan/1` JSON contract (../shared/spec/scan-report.md) built from a `Scan`.

Seconds are rounded to 0.1 ms, milliseconds to 1 us: finer digits are noise, and stable output
makes reports diffable run to run.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from .. import __version__
from ..effort import Quote
from ..kit import PairAnalysis
from ..pipeline import Scan

SCHEMA = "sessionfix.scan/1"


def _finite(x: float | None, digits: int) -> float | None:
    """x rounded to `digits`, None if absent or not finite; a value that rounds to zero is 0.0, never -0.0
    (its sign is rounding noise, and would differ between otherwise equal reports)."""
    return None if x is None or not math.isfinite(x) else round(float(x), digits) + 0.0


def _tempo(scan: Scan) -> dict[str, Any] | None:
    tempo = scan.kit.tempo
    if tempo is None:
        return None
    return {
        "bpm": round(tempo.bpm, 3),
        "first_downbeat_s": round(tempo.first_beat_s, 4),
        "meter": tempo.meter,
        "beats_s": [round(float(b), 4) for b in tempo.beats_s],
    }


def _pair(p: PairAnalysis, sr: int) -> dict[str, Any]:
    moves = p.moves_ms
    return {
        "close": p.close,
        "reference": p.reference,
        "instrument": p.instrument,
        "state": p.state,
        "natural_lag_ms": _finite(p.natural_lag_ms, 4),
        "natural_lag_basis": p.natural_lag_basis,
        "spread_ms": _finite(p.spread_ms, 4),
        "hits": [
            {
                "close_s": round(int(pos) / sr, 6),
                "lag_ms": _finite(float(lag), 4),
                "move_ms": _finite(float(move), 4),
                "confidence": round(float(confidence), 3),
            }
            for pos, lag, move, confidence, repeated in zip(
                p.positions, p.lags_ms, moves, p.confidence, p.repeated, strict=True
            )
            if not repeated  # a stroke heard twice (an edit's flam) is one hit, listed once
        ],
    }


def effort_dict(scan: Scan, quote: Quote | None = None) -> dict[str, Any]:
    effort: dict[str, Any] = {
        "manual_minutes": scan.effort.manual_minutes,
        "items": [asdict(i) for i in scan.effort.items],
    }
    if quote is not None:
        effort["quote"] = asdict(quote)
    return effort


def scan_to_dict(scan: Scan, quote: Quote | None = None) -> dict[str, Any]:
    """The report as plain JSON-able data, exactly per the schema (plus a few documented extras)."""
    session = scan.session
    tracks = []
    for t in session.tracks:
        stats = scan.qc.stats.get(t.name)
        tracks.append(
            {
                "file": t.name,
                "role": scan.roles[t.name],
                "role_from": "audio" if t.name in scan.roles_from_audio else "name",
                **(
                    {"role_guess": {"role": scan.role_guesses[t.name][0], "confidence": scan.role_guesses[t.name][1]}}
                    if t.name in scan.role_guesses
                    else {}
                ),
                "sample_rate": t.sr,
                "channels": t.channels,
                "frames": t.frames,
                "subtype": t.subtype,
                "peak_dbfs": _finite(stats.peak_dbfs, 2) if stats else None,
                "offset_s": round(t.offset / t.sr, 6),
            }
        )
    for f in session.findings:  # unreadable files are tracks too, with what is known of them
        if f.kind == "unreadable" and f.track and f.track not in scan.roles:
            tracks.append(
                {
                    "file": f.track,
                    "role": "other",
                    "sample_rate": None,
                    "channels": None,
                    "frames": None,
                    "subtype": None,
                    "peak_dbfs": None,
                }
            )
    findings = []
    for f in scan.findings:
        d = asdict(f)
        d["start_s"] = _finite(f.start_s, 4)
        d["end_s"] = _finite(f.end_s, 4)
        d["value"] = _finite(f.value, 3)
        findings.append(d)
    return {
        "schema": SCHEMA,
        "tool": {"name": "sessionfix", "version": __version__},
        "session": {
            "path": str(session.path.resolve()),
            "sample_rate": session.sr,
            "duration_s": round(session.duration_s, 4),
        },
        "tracks": tracks,
        "tempo": _tempo(scan),
        "kit": {
            "pairs": [_pair(p, scan.session.sr or 48000) for p in scan.kit.pairs],
            "edited": list(scan.kit.edited),
            "moved_hits": scan.kit.moved_hits,
        },
        "parts": {
            "reference_a4_hz": scan.parts.reference_a4_hz,
            "tracks": [
                {
                    "file": p.track,
                    "offset_cents": _finite(p.offset_cents, 1),
                    "notes": len(p.notes),
                    "placement_ms": _finite(p.placement_ms, 1),
                }
                for p in scan.parts.parts
            ],
        },
        "findings": findings,
        "effort": effort_dict(scan, quote),
    }
