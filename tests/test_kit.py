"""Kit analysis on synthetic kits with known truth: every hit's move to the sample, known lags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from make_fixtures import edited_kit

from sessionfix.kit import KitParams, analyse_kit, measure_lags
from sessionfix.pipeline import scan
from sessionfix.roles import assign_roles, kit_layout
from sessionfix.session import load_session

SR = 48000
BEAT = SR // 2  # 120 bpm
NATURAL = 163.3  # samples: 3.402 ms, an overhead ~1.2 m above the snare


def _groove(n: int, seed: int = 4) -> tuple[list[int], list[int]]:
    """Snare on every beat from 0.5 s, played with ~6 ms jitter; 70% quantised back onto the beat."""
    rng = np.random.default_rng(seed)
    grid = [SR // 2 + i * BEAT for i in range(n)]
    jitter = [int(round(j)) for j in rng.normal(0, 0.006 * SR, n)]
    played = [g + j for g, j in zip(grid, jitter, strict=True)]
    moves = [(-j if i % 10 >= 3 else 0) for i, j in enumerate(jitter)]
    return played, moves


def _session(tmp_path: Path, close: np.ndarray, references: dict[str, np.ndarray]) -> Path:
    sf.write(tmp_path / "Snare Top.wav", close, SR, subtype="PCM_24")
    for name, audio in references.items():
        sf.write(tmp_path / f"{name}.wav", audio, SR, subtype="PCM_24")
    return tmp_path


def _analyse(folder: Path):
    session = load_session(folder)
    roles = assign_roles([t.name for t in session.tracks])
    return analyse_kit(
        session, layout=kit_layout(roles), roles=roles, params=KitParams(), usable={t.name for t in session.tracks}
    )


def test_every_moved_hit_is_found_with_its_move(tmp_path: Path) -> None:
    played, moves = _groove(40)
    close, oh = edited_kit(SR, played=played, moves=moves, natural_lag=NATURAL)
    _, oh_r = edited_kit(SR, played=played, moves=moves, natural_lag=NATURAL + 61.7, seed=1)
    kit = _analyse(_session(tmp_path, close, {"OH L": oh, "OH R": oh_r}))
    pair = next(p for p in kit.pairs if p.reference == "OH L.wav")
    assert pair.state == "partially_quantised"
    assert pair.natural_lag_basis == "unmoved_hits"
    assert pair.natural_lag_ms == pytest.approx(NATURAL / SR * 1e3, abs=0.005)
    # hit positions: the attack of each (moved) hit, to within a sample of the truth
    truth = np.array([p + m for p, m in zip(played, moves, strict=True)]) + 7.3
    assert len(pair.positions) == len(truth)
    assert np.max(np.abs(pair.positions - truth)) <= 2
    moves_ms = np.array(moves) / SR * 1e3
    assert np.max(np.abs(pair.moves_ms - moves_ms)) < 0.01  # half a sample at 48 kHz
    assert kit.edited == ("Snare Top.wav",)
    assert kit.moved_hits == sum(abs(m) / SR * 1e3 > KitParams().unmoved_ms for m in moves)
    finding = next(f for f in kit.findings if f.kind == "partial_quantisation")
    assert finding.track == "Snare Top.wav" and "OH L/OH R" in finding.message


def test_a_coherent_kit_is_left_alone(tmp_path: Path) -> None:
    played, _ = _groove(40)
    close, oh = edited_kit(SR, played=played, moves=[0] * 40, natural_lag=NATURAL)
    kit = _analyse(_session(tmp_path, close, {"OH L": oh}))
    (pair,) = kit.pairs
    assert pair.state == "coherent" and kit.findings == () and kit.edited == ()
    assert pair.spread_ms < 0.005
    assert pair.natural_lag_ms == pytest.approx(NATURAL / SR * 1e3, abs=0.005)


@pytest.mark.parametrize("true_lag", [0.0, 17.25, 163.3, 1000.9])
def test_lags_are_sub_sample(true_lag: float) -> None:
    rng = np.random.default_rng(1)
    from make_fixtures import delay, snare

    hit = np.concatenate([np.zeros(480), snare(SR, rng)[:6000]])
    ref = delay(np.concatenate([np.zeros(3000), hit, np.zeros(3000)]), true_lag)
    close = hit[:2400]
    reference = ref[: 2400 + 6000][None, :]
    lags, signs = measure_lags(close[None, :], reference, sr=SR, band=(150, 8000), min_lag=-3000, min_correlation=0.3)
    assert lags[0] == pytest.approx(true_lag, abs=0.02 * SR / 1000)  # 0.02 ms
    assert signs[0] == 1


def test_a_hit_at_time_zero_is_measured(tmp_path: Path) -> None:
    played = [0] + [SR // 2 + i * BEAT for i in range(10)]
    close, oh = edited_kit(SR, played=played, moves=[0] * 11, natural_lag=NATURAL)
    kit = _analyse(_session(tmp_path, close, {"OH L": oh}))
    (pair,) = kit.pairs
    assert pair.positions[0] <= 8 and pair.measured[0]
    assert pair.lags_ms[0] == pytest.approx(NATURAL / SR * 1e3, abs=0.01)


def test_a_reversed_reference_keeps_its_lag_and_is_reported(tmp_path: Path) -> None:
    played, _ = _groove(20)
    close, oh = edited_kit(SR, played=played, moves=[0] * 20, natural_lag=NATURAL, polarity=-1.0)
    _, oh_r = edited_kit(SR, played=played, moves=[0] * 20, natural_lag=NATURAL + 40, polarity=-1.0)
    kit = _analyse(_session(tmp_path, close, {"OH L": oh, "OH R": oh_r}))
    pair = next(p for p in kit.pairs if p.reference == "OH L.wav")
    assert pair.natural_lag_ms == pytest.approx(NATURAL / SR * 1e3, abs=0.005)
    assert np.all(pair.signs == -1)
    assert {f.track for f in kit.findings if f.kind == "polarity"} == {"OH L.wav", "OH R.wav"}


def test_a_repeating_groove_never_locks_a_beat_away(tmp_path: Path) -> None:
    """Identical hits every 100 ms (sixteenths at 150 bpm): the lag search stays within its window."""
    played = [SR // 2 + i * 4800 for i in range(60)]
    close, oh = edited_kit(SR, played=played, moves=[0] * 60, natural_lag=NATURAL)
    kit = _analyse(_session(tmp_path, close, {"OH L": oh}))
    (pair,) = kit.pairs
    measured = pair.lags_ms[pair.measured]
    assert len(measured) >= 50
    assert np.all(np.abs(measured - NATURAL / SR * 1e3) < 0.05)


def test_a_hit_too_weak_on_the_reference_is_unmeasured(tmp_path: Path) -> None:
    played, _ = _groove(20)
    gains = [1.0] * 20
    gains[7] = 0.0  # the overhead did not hear hit 7 at all
    close, oh = edited_kit(SR, played=played, moves=[0] * 20, natural_lag=NATURAL, reference_gain=gains)
    kit = _analyse(_session(tmp_path, close, {"OH L": oh}))
    (pair,) = kit.pairs
    assert not pair.measured[7]
    assert pair.measured.sum() == 19


def test_digital_silence_on_a_reference_is_a_qc_finding_not_a_crash(tmp_path: Path) -> None:
    played, moves = _groove(20)
    close, oh = edited_kit(SR, played=played, moves=moves, natural_lag=NATURAL)
    folder = _session(tmp_path, close, {"OH L": oh, "OH R": np.zeros_like(oh)})
    result = scan(folder)
    assert [p.reference for p in result.kit.pairs] == ["OH L.wav"]
    assert ("OH R.wav", "silent") in {(f.track, f.kind) for f in result.findings}
