"""Hit detection on a close mic: one hit per stroke, at the sample where its attack starts."""

from __future__ import annotations

import numpy as np
import pytest

from sessionfix.onsets import OnsetParams, detect_hits

SR = 48000


def _beating_kick(lead_in: bool) -> np.ndarray:
    """A kick whose two shell modes (52 and 67 Hz) beat: the body fades to a null ~33 ms after the
    stroke and swells back a few dB down (as the eval kits' kicks do at 35-38 ms); a beater click on
    the stroke. With `lead_in`, a soft, click-less rise 15 ms before the stroke (as some sampled
    kicks have)."""
    t = np.arange(int(0.4 * SR)) / SR
    body = np.exp(-t / 0.07) * (np.sin(2 * np.pi * 52 * t) + np.sin(2 * np.pi * 67 * t))
    rng = np.random.default_rng(0)
    click = rng.standard_normal(t.size) * np.exp(-t / 0.0015) * 0.8
    stroke = body + click
    if not lead_in:
        return stroke
    lead = int(0.015 * SR)
    pre = np.zeros(lead)
    tl = np.arange(lead) / SR
    pre[:] = 0.25 * np.sin(2 * np.pi * 40 * tl) * np.minimum(tl / 0.003, 1.0)
    return np.concatenate((pre, stroke))


@pytest.mark.parametrize("lead_in", [False, True])
def test_a_ringing_kick_is_one_hit_per_stroke(lead_in: bool) -> None:
    sound = _beating_kick(lead_in)
    attack = int(0.015 * SR) if lead_in else 0  # where the stroke starts within the sound
    starts = [int(0.25 * SR) + k * int(0.5 * SR) + (k % 3) * 37 for k in range(12)]
    signal = np.random.default_rng(1).standard_normal(starts[-1] + SR) * 3e-3  # bleed and room, -50 dBFS
    for k, s in enumerate(starts):
        signal[s : s + sound.size] += (0.8 if k % 2 else 0.6) * sound
    hits = detect_hits(signal.astype(np.float32), sr=SR, instrument="kick", track="Kick.wav", params=OnsetParams())
    assert len(hits) == len(starts)  # no swell after the null, no lead-in: one hit per stroke
    errors = hits.positions - (np.array(starts) + attack)
    assert np.all(np.abs(errors) <= 2), errors  # the click's first samples, within 2 samples
