"""The `sessionfix.scan/1` JSON contract (../shared/spec/scan-report.md) built from a `Scan`.

Seconds are rounded to 0.1 ms, milliseconds to 1 us: finer digits are noise, and stable output
makes reports diffable run to run.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from .. import __version__
from ..pipeline import Scan

SCHEMA = "sessionfix.scan/1"


def _finite(x: float | None, digits: int) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def scan_to_dict(scan: Scan) -> dict[str, Any]:
    """The report as plain JSON-able data, exactly per the schema (plus a few documented extras)."""
    session = scan.session
    tracks = []
    for t in session.tracks:
        stats = scan.qc.stats.get(t.name)
        tracks.append(
            {
                "file": t.name,
                "role": scan.roles[t.name],
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
        "tempo": None,
        "kit": {"pairs": []},
        "findings": findings,
        "effort": {"manual_minutes": scan.effort.manual_minutes, "items": [asdict(i) for i in scan.effort.items]},
    }
