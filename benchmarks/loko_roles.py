"""The role model and the pipeline's physics rules, leave one kit out, on the training kits (issue 15).

    python benchmarks/loko_roles.py --eval-python PY --kit-git DIR [--cache DIR]

For each training kit (models/train_roles.py's renders, made once into the cache): fit the model on the
other kits, copy the kit's sessions with every file renamed "Audio 1_NN.wav" (symlinks), and guess
their roles as a scan does (`pipeline._roles_by_audio`: the model, the far-mic split, the close-mic
rule). Prints each stem guessed wrongly or below the floor, then the counts: used (>= MIN_CONFIDENCE)
and right, used and wrong, argmax right. A measure of the rules on kits the model never saw, beside
benchmarks/eval_roles.py's three held-out kits.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from sessionfix.pipeline import _roles_by_audio, usable_tracks
from sessionfix.qc import QcParams, check_session
from sessionfix.rolemodel import MIN_CONFIDENCE, fit
from sessionfix.roles import assign_roles, kit_layout
from sessionfix.session import load_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
import train_roles  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval-python", required=True)
    ap.add_argument("--kit-git", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/sessionfix-role-renders"))
    args = ap.parse_args()
    sessions = train_roles.render_all(args.eval_python, args.cache)
    sessions += train_roles.render_real_all(args.eval_python, args.cache, args.kit_git)
    x, y, sources = train_roles.examples(sessions)
    counts = dict(stems=0, used_right=0, used_wrong=0, argmax_right=0)
    with tempfile.TemporaryDirectory() as tmp:
        for held in sorted(set(sources)):
            train = np.array([s != held for s in sources])
            model = fit(x[train], [c for c, t in zip(y, train, strict=True) if t])
            for source, folder in sessions:
                if source != held:
                    continue
                names = sorted(p.name for p in folder.glob("*.wav"))
                truth = assign_roles(names)
                renamed = Path(tmp) / folder.parent.name
                shutil.rmtree(renamed, ignore_errors=True)
                renamed.mkdir()
                mapping = {}
                for i, name in enumerate(names):
                    (renamed / f"Audio 1_{i + 1:02d}.wav").symlink_to(folder / name)
                    mapping[f"Audio 1_{i + 1:02d}.wav"] = name
                session = load_session(renamed)
                roles = assign_roles([t.name for t in session.tracks])
                qc = check_session(session, layout=kit_layout(roles), params=QcParams())
                guesses = _roles_by_audio(session, roles, usable=usable_tracks(session, qc), named=set(), model=model)
                for new, (role, p) in sorted(guesses.items()):
                    real = truth[mapping[new]]
                    if real not in train_roles.CLASSES:
                        continue
                    counts["stems"] += 1
                    counts["argmax_right"] += role == real
                    if p >= MIN_CONFIDENCE:
                        counts["used_right"] += role == real
                        counts["used_wrong"] += role != real
                    if role != real or p < MIN_CONFIDENCE:
                        print(f"{folder.parent.name:28s} {mapping[new]:18s} {real:9s} -> {role} {p:.2f}")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
