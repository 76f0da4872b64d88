"""The role model: refused when tampered with, never over a name, right on clear cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from make_fixtures import bass_part, kit_session

from sessionfix.pipeline import scan
from sessionfix.rolemodel import (
    FEATURES,
    ModelError,
    RoleModel,
    guess_roles,
    leads_far_mics,
    level_db,
    load_model,
    models_folder,
    track_features,
)

SR = 48000


def test_the_shipped_model_loads_and_a_tampered_one_is_refused(tmp_path: Path) -> None:
    model = load_model()
    assert set(model.classes) == {"kick", "snare", "tom", "hihat", "overhead", "room", "bass", "guitar", "vocal"}
    assert model.weights.shape == (len(FEATURES), len(model.classes))
    assert (models_folder() / "roles-v1.npz").stat().st_size < 5_000_000
    copy = tmp_path / "models"
    shutil.copytree(models_folder(), copy)
    data = bytearray((copy / "roles-v1.npz").read_bytes())
    data[-100] ^= 0xFF  # one byte changed
    (copy / "roles-v1.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its sha256"):
        load_model(copy)
    (copy / "registry.json").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(copy)


def test_a_bass_line_and_a_kick_mic_are_told_apart() -> None:
    model = load_model()
    mics, _ = kit_session(SR, 20.0, seed=2)
    bass = model.probabilities(track_features(bass_part(SR, 20.0, seed=3), SR))[0]
    kick = model.probabilities(track_features(mics["Kick In"], SR, (0.5, 0.0, 0.0)))[0]
    assert model.classes[int(np.argmax(bass))] == "bass" and bass.max() >= 0.8
    assert model.classes[int(np.argmax(kick))] in ("kick", "tom")


def test_the_name_wins_and_an_unnamed_bass_gets_its_role_from_audio(tmp_path: Path) -> None:
    mics, _ = kit_session(SR, 20.0, seed=2)
    (tmp_path / "s").mkdir()
    for name, audio in mics.items():
        sf.write(tmp_path / "s" / f"{name}.wav", audio, SR, subtype="PCM_24")
    sf.write(tmp_path / "s" / "Audio 1_07.wav", bass_part(SR, 20.0, seed=3), SR, subtype="PCM_24")
    result = scan(tmp_path / "s")
    assert result.roles["Kick In.wav"] == "kick" and "Kick In.wav" not in result.role_guesses  # named
    assert result.roles["Audio 1_07.wav"] == "bass" and "Audio 1_07.wav" in result.roles_from_audio
    role, confidence = result.role_guesses["Audio 1_07.wav"]
    assert role == "bass" and confidence >= 0.8
    # ...and it is analysed as the bass it is
    assert [p.track for p in result.parts.parts] == ["Audio 1_07.wav"]


def test_far_mics_are_told_apart_by_their_arrival_at_the_model_s_far_mic_probability() -> None:
    # a model that reads both far mics as overheads (0.6) rather than rooms (0.35), and a kick as a kick
    classes = ("kick", "overhead", "room")
    model = RoleModel(
        classes=classes,
        mean=np.zeros(1),
        scale=np.ones(1),
        weights=np.array([[4.0, 0.0, 0.0]]),
        bias=np.log(np.array([0.05, 0.6, 0.35])),
    )
    features = {"Audio 1_01.wav": np.array([0.0]), "Audio 1_02.wav": np.array([0.0]), "Audio 1_03.wav": np.array([3.0])}
    # the direct sound reaches _02 5.4 ms after _01 (a room 2 m behind the overheads)
    guesses = guess_roles(model, features, {"Audio 1_01.wav": 3.1, "Audio 1_02.wav": 8.5, "Audio 1_03.wav": 0.0})
    assert guesses["Audio 1_01.wav"] == ("overhead", 0.95)
    assert guesses["Audio 1_02.wav"] == ("room", 0.95)  # the arrival says room; the model, a far mic
    assert guesses["Audio 1_03.wav"][0] == "kick"
    # arrivals that do not split (a stereo pair of overheads): the model's own guesses stand
    same = guess_roles(model, features, {"Audio 1_01.wav": 3.1, "Audio 1_02.wav": 3.4, "Audio 1_03.wav": 0.0})
    assert same["Audio 1_01.wav"] == same["Audio 1_02.wav"] == ("overhead", 0.6)


def _drum_mics(delays_ms: tuple[float, ...], *, room: tuple[int, ...] = (), seed: int = 7) -> list[np.ndarray]:
    """One drum's 40 hits (decaying noise bursts of random strength) heard by mics `delays_ms` after the
    first, each quieter with distance, over a faint noise floor; the mics numbered in `room` also hear
    four reflections of each hit 3-25 ms after its direct sound, each as strong as it."""
    rng = np.random.default_rng(seed)
    n = 20 * SR
    starts = np.sort(rng.choice(np.arange(SR // 2, n - SR // 2, SR // 10), size=40, replace=False))
    burst = rng.standard_normal(SR // 10) * np.exp(-np.arange(SR // 10) / (0.015 * SR))
    gains = rng.uniform(0.5, 1.0, size=starts.size)
    mics = []
    for i, delay in enumerate(delays_ms):
        x = 1e-5 * rng.standard_normal(n)
        for start, gain in zip(starts, gains, strict=True):
            at = start + int(round(delay * SR / 1000))
            x[at : at + burst.size] += burst * gain * 0.5 / (1 + i)
            for reflection in rng.uniform(3, 25, size=4 if i in room else 0):
                late = at + int(reflection * SR / 1000)
                x[late : late + burst.size] += burst * gain * 1.0 / (1 + i)  # stronger than the direct sound
        mics.append(x)
    return mics


def test_a_close_mic_is_one_whose_loud_hits_the_far_mics_hear_later() -> None:
    close, left, right, room = (level_db(x, SR) for x in _drum_mics((0.0, 3.0, 3.4, 9.0), room=(3,)))
    assert leads_far_mics(close, {"OH L": left, "OH R": right, "Room": room})
    # an overhead does not: its pair hears the hits about when it does, the room later
    assert not leads_far_mics(left, {"OH R": right, "Room": room})
    # the close mic judged against itself-like mics (0.0 and 0.5 ms after it): not a close mic
    beside, near_a, near_b = (level_db(x, SR) for x in _drum_mics((0.0, 0.0, 0.5)))
    assert not leads_far_mics(beside, {"A": near_a, "B": near_b})
    # one far mic alone is no evidence
    assert not leads_far_mics(close, {"OH L": left})


def test_a_close_mic_s_far_mic_probability_is_dropped_when_it_hears_its_hits_first() -> None:
    # a model that reads the track as a tom (0.6) that might be a room mic (0.35)
    classes = ("kick", "tom", "overhead", "room")
    model = RoleModel(
        classes=classes,
        mean=np.zeros(1),
        scale=np.ones(1),
        weights=np.zeros((1, 4)),
        bias=np.log([0.05, 0.6, 0.0001, 0.35]),
    )
    features = {"Audio 1_01.wav": np.array([0.0])}
    close, overhead, room = (level_db(x, SR) for x in _drum_mics((0.0, 3.0, 9.0), room=(2,)))
    levels = {"Audio 1_01.wav": close, "OH L.wav": overhead, "Room.wav": room}
    assert guess_roles(model, features, {"Audio 1_01.wav": 0.0}) == {"Audio 1_01.wav": ("tom", 0.6)}
    guesses = guess_roles(model, features, {"Audio 1_01.wav": 0.0}, levels, ("OH L.wav", "Room.wav"))
    assert guesses == {"Audio 1_01.wav": ("tom", 0.92)}  # 0.6 / (0.6 + 0.05)
    # the same track heard after the far mics: the model's guess stands
    late = {"Audio 1_01.wav": room, "OH L.wav": overhead, "Room.wav": close}
    assert guess_roles(model, features, {"Audio 1_01.wav": 0.0}, late, ("OH L.wav", "Room.wav"))["Audio 1_01.wav"] == (
        "tom",
        0.6,
    )
