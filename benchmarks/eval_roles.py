"""Measure the role model on sessions whose names say nothing (issue 15).

    python benchmarks/eval_roles.py --eval-python PY [--cache DIR]

Renders a partially quantised session (../shared/eval/render.py --scenario partial_cut) with each of the
three hydrogen kits kept out of training (BJA_Pacific, ColomboAcousticDrumkit, Millo_MultiLayered2),
adds render_parts.py's three parts, then copies it with every file renamed "Audio 1_NN.wav". Prints per
track the role from its name and the role (and confidence) from its audio, the share right, and the
partial quantisation found with the real names and with the audio roles.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from sessionfix.pipeline import scan

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
KITS = ("BJA_Pacific", "ColomboAcousticDrumkit", "Millo_MultiLayered2")
MODEL_CLASSES = ("kick", "snare", "tom", "hihat", "overhead", "room", "bass", "guitar", "vocal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval-python", required=True)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/sessionfix-role-eval"))
    args = ap.parse_args()
    right = total = 0
    for k, kit in enumerate(KITS):
        folder = args.cache / kit
        if not (folder / "truth.json").exists():
            run = [args.eval_python, str(EVAL / "render.py"), "--out", str(folder), "--scenario", "partial_cut"]
            subprocess.run([*run, "--seed", str(31 + k), "--bpm", str(100 + 20 * k), "--kit", kit], check=True)
            subprocess.run(
                [args.eval_python, str(EVAL / "render_parts.py"), str(folder), "--seed", str(31 + k)], check=True
            )
        named = scan(folder / "session")
        renamed = args.cache / f"{kit}-renamed"
        shutil.rmtree(renamed, ignore_errors=True)
        renamed.mkdir(parents=True)
        mapping = {}
        for i, track in enumerate(sorted(named.session.tracks, key=lambda t: t.name)):
            new = f"Audio 1_{i + 1:02d}.wav"
            shutil.copy(track.path, renamed / new)
            mapping[new] = track.name
        blind = scan(renamed)
        rows = []
        for new, old in sorted(mapping.items()):
            truth = named.roles[old]
            got = blind.roles[new]
            guess = blind.role_guesses.get(new)
            if truth in MODEL_CLASSES:
                total += 1
                right += got == truth
            rows.append((old, truth, got, guess))
        edited_named = sorted(named.kit.edited)
        edited_blind = sorted(mapping[n] for n in blind.kit.edited)
        print(json.dumps({"kit": kit, "tracks": rows, "edited_named": edited_named, "edited_audio": edited_blind}))
    print(json.dumps({"right": f"{right}/{total}", "share": round(right / max(total, 1), 3)}))


if __name__ == "__main__":
    main()
