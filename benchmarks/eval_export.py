"""Issue 16's acceptance on rendered sessions: align's REAPER project against its edits and its stems,
scan's MIDI file against the reported hits.

    python benchmarks/eval_export.py RENDER [RENDER ...]   # render.py / render_real.py output folders

Per render and --follow mode: moved tracks, items per moved track against edit regions, the largest
item-position error against round(cut + move) (samples), the largest sub-sample move error, the
item layout played from the original files against the rendered stems (dB re the stem's peak), and
per drum the MIDI notes against the hits the scan reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import mido
import numpy as np
import rpp
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sessionfix.cli import main  # noqa: E402
from sessionfix.pipeline import scan  # noqa: E402
from sessionfix.session import load_session  # noqa: E402
from test_export import _items, _play  # noqa: E402  (the tests' independent reader and player)


def eval_align(session: Path, follow: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "out")
        code = main(["align", str(session), "--out", str(out), "--follow", follow, "--quiet", "--jobs", "1"])
        edits = json.loads((out / "sessionfix-edits.json").read_text())
        tracks = _items(rpp.loads((out / "sessionfix-edits.rpp").read_text()))
        sr = edits["sample_rate"]
        regions_ok, position_err, move_err, play_db = True, 0.0, 0.0, -np.inf
        for stem in load_session(session).tracks:
            if stem.name not in edits["moved_tracks"]:
                continue
            items = tracks[stem.name]
            rows = [e for e in edits["edits"] if e["track"] == stem.name]
            regions_ok &= len(items) == len(rows) + 1
            for item, row in zip(items[1:], rows, strict=False):
                boundary = round(row["cut"] + stem.offset + row["move_samples"])
                start = (float(item["position"]) + float(item["fade_in"])) * sr
                position_err = max(position_err, abs(start - boundary))
                move = float(item["position"]) * sr - stem.offset - float(item["soffs"]) * sr
                move_err = max(move_err, abs(move - row["move_samples"]))
            played = _play(items, stem.offset, stem.frames)
            aligned, _ = sf.read(out / stem.name, dtype="float64", always_2d=True)
            play_db = max(play_db, 20 * np.log10(np.max(np.abs(played - aligned)) / np.max(np.abs(aligned)) + 1e-300))
        return {
            "follow": follow,
            "exit": code,
            "moved_tracks": len(edits["moved_tracks"]),
            "edits": len(edits["edits"]),
            "one_item_per_region": bool(regions_ok),
            "max_position_error_samples": round(position_err, 6),
            "max_move_error_samples": round(move_err, 6),
            "layout_vs_stems_db": round(float(play_db), 1),
        }


def eval_midi(session: Path) -> dict:
    result = scan(session)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "hits.mid")
        main(["scan", str(session), "--midi", str(path), "--quiet", "--jobs", "1"])
        midi = mido.MidiFile(path)
    notes = {t.name: sum(1 for m in t if m.type == "note_on" and m.velocity > 0) for t in midi.tracks[1:]}
    hits = {}  # the hits the report lists: a stroke heard twice (an edit's flam) once
    for name, h in result.kit.hits.items():
        pair = next((p for p in result.kit.pairs if p.close == name), None)
        hits[name] = int(len(h) - (pair.repeated.sum() if pair is not None else 0))
    return {"midi_notes": notes, "reported_hits": hits}


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("renders", nargs="+", type=Path)
    for render in parser.parse_args().renders:
        session = render / "session" if (render / "session").is_dir() else render
        row = {"render": str(render), "align": [eval_align(session, f) for f in ("close", "played")]}
        row.update(eval_midi(session))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main_()
