"""Train the role model (models/roles-v1.npz) from renders anyone can make, reproducibly.

    python models/train_roles.py --eval-python PY --kit-git DIR [--cache DIR] [--real RENDER ...]

PY is a Python with the renderers' needs (../shared/eval/setup.sh makes one: mido, fluidsynth, the
Debian hydrogen-drumkits and FluidR3 GM soundfont). Training sessions: ../shared/eval/render.py with the
hydrogen kits below (never BJA_Pacific, ColomboAcousticDrumkit or Millo_MultiLayered2: they are kept for
evaluation), two seeds and tempos each, and render_parts.py's bass, guitar and voice (FluidR3) on
every one; --kit-git (a local git copy of github.com/sfzinstruments/DrumGizmo.MuldjordKit) gives three
render_real.py natural sessions of that kit with the same parts; --real adds any render_real.py renders.
Labels are the roles the renders' own track names give (sessionfix.roles). Prints leave-one-kit-out
accuracy per class (the model card's figures), then fits on everything and writes the model and its registry entry.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from sessionfix.rolemodel import attack_envelope, fit, models_folder, save_model, session_context, track_features
from sessionfix.roles import assign_roles

HERE = Path(__file__).resolve().parent
EVAL = HERE.parent.parent / "shared" / "eval"
TRAINING_KITS = (
    "The Black Pearl 1.0",
    "rumpf_kit_z01_h2",
    "Millo-Drums_v.1",
    "Millo_MultiLayered3",
    "Audiophob",
    "ElectricEmpireKit",
    "ForzeeStereo",
    "HardElectro1",
    "VariBreaks",
)
REAL_RENDERS = ((301, 96.0), (302, 120.0), (303, 144.0))  # render_real.py natural sessions: seed, bpm
CLASSES = ("kick", "snare", "tom", "hihat", "overhead", "room", "bass", "guitar", "vocal")


def render_all(python: str, cache: Path) -> list[tuple[str, Path]]:
    """(source, session folder) of every training render, made once into `cache`."""
    out = []
    for k, kit in enumerate(TRAINING_KITS):
        for seed, bpm in ((101 + k, 96), (201 + k, 140)):
            folder = cache / f"{kit.replace(' ', '_')}-{seed}"
            if not (folder / "truth.json").exists():
                subprocess.run(
                    [
                        python,
                        str(EVAL / "render.py"),
                        "--out",
                        str(folder),
                        "--scenario",
                        "natural",
                        "--seed",
                        str(seed),
                        "--bpm",
                        str(bpm),
                        "--kit",
                        kit,
                    ],
                    check=True,
                    capture_output=True,
                )
                subprocess.run(
                    [python, str(EVAL / "render_parts.py"), str(folder), "--seed", str(seed)],
                    check=True,
                    capture_output=True,
                )
            out.append((kit, folder / "session"))
    return out


def render_real_all(python: str, cache: Path, kit_git: Path) -> list[tuple[str, Path]]:
    """(source, session folder) of the render_real.py training sessions, made once into `cache`."""
    out = []
    for seed, bpm in REAL_RENDERS:
        folder = cache / f"MuldjordKit-{seed}"
        if not (folder / "truth.json").exists():
            run = [python, str(EVAL / "render_real.py"), "--out", str(folder), "--scenario", "natural"]
            run += ["--seed", str(seed), "--tempo", str(bpm), "--kit-git", str(kit_git)]
            subprocess.run(run, check=True, capture_output=True)
            subprocess.run(
                [python, str(EVAL / "render_parts.py"), str(folder), "--seed", str(seed)],
                check=True,
                capture_output=True,
            )
        out.append(("MuldjordKit", folder / "session"))
    return out


def examples(sessions: list[tuple[str, Path]]) -> tuple[np.ndarray, list[str], list[str]]:
    rows, labels, sources = [], [], []
    for source, folder in sessions:
        names = sorted(p.name for p in folder.glob("*.wav"))
        roles = assign_roles(names)
        audio = {}
        for name in names:
            data, sr = sf.read(folder / name, always_2d=True)
            audio[name] = data.mean(axis=1)
        context = session_context({n: attack_envelope(a, sr) for n, a in audio.items()})
        for name in names:
            if roles[name] not in CLASSES:
                continue
            rows.append(track_features(audio[name], sr, context[name]))
            labels.append(roles[name])
            sources.append(source)
    return np.array(rows), labels, sources


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval-python", required=True)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/sessionfix-role-renders"))
    ap.add_argument(
        "--kit-git",
        type=Path,
        required=True,
        help="a local git copy of github.com/sfzinstruments/DrumGizmo.MuldjordKit (part of the training data)",
    )
    ap.add_argument("--real", type=Path, nargs="*", default=[], help="render_real.py renders (folders)")
    args = ap.parse_args()
    sessions = render_all(args.eval_python, args.cache) + render_real_all(args.eval_python, args.cache, args.kit_git)
    sessions += [("MuldjordKit", r / "session") for r in args.real]
    x, y, sources = examples(sessions)
    print(f"{len(y)} tracks from {len(set(sources))} kits: {dict(Counter(y))}", file=sys.stderr)
    right: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for held in sorted(set(sources)):
        train = np.array([s != held for s in sources])
        model = fit(x[train], [c for c, t in zip(y, train, strict=True) if t])
        p = model.probabilities(x[~train])
        for truth, row in zip([c for c, t in zip(y, train, strict=True) if not t], p, strict=True):
            seen[truth] += 1
            right[truth] += model.classes[int(np.argmax(row))] == truth
    for c in CLASSES:
        print(f"leave-one-kit-out {c}: {right[c]}/{seen[c]}")
    print(f"leave-one-kit-out all: {sum(right.values())}/{sum(seen.values())}")
    digest = save_model(fit(x, y), models_folder())
    print(f"wrote {models_folder() / 'roles-v1.npz'} sha256 {digest}")


if __name__ == "__main__":
    main()
