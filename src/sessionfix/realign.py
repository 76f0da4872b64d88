"""Drum realignment: a pure planner (kit analysis -> `EditPlan`) and a renderer (plan + audio -> audio).

Conventions
- A plan moves one group of tracks as one: `follow="close"` moves every unedited kit mic (overheads,
  rooms, hat and tom mics) to follow the edited close mics; `follow="played"` moves the edited close
  mics back to where the overheads say each hit was played.
- `cuts` are positions (samples) in the moved group's own audio; region k starts at cuts[k] and is
  displaced by moves[k] samples (fractional; positive = later). Audio before the first cut stays.
- Output boundaries sit at round(cut + move). Each gets an equal-power crossfade of `crossfade`
  samples that ends at the boundary, in the gap before a hit; a gap a move opens is filled by letting
  the earlier region run on, as a DAW's edit smoothing does.
- Fractional moves use a Kaiser-windowed sinc; a whole-sample move copies samples, so a zero move is
  bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.special import i0

from .kit import KitAnalysis

Follow = Literal["close", "played"]


@dataclass(frozen=True)
class RealignParams:
    """Edit placement settings."""

    crossfade_ms: float = 2.0  # short enough to sit in the gap before a hit, long enough not to click
    attack_guard_ms: float = 1.0  # cuts end this far ahead of the earliest arrival of a hit
    protect_ms: float = 10.0  # never cut inside the first 10 ms after any hit's attack on any kit mic
    same_hit_ms: float = 5.0  # hits this close (in played time) are one hit seen twice (an edit's flam)
    min_move_change: float = 0.01  # samples: consecutive regions moving less differently than this merge


@dataclass(frozen=True)
class EditPlan:
    """Cuts and moves shared by every track of the moved group."""

    follow: Follow
    tracks: tuple[str, ...]  # the group that moves
    cuts: tuple[int, ...]  # samples in the group's audio, increasing
    moves: tuple[float, ...]  # samples per region, same length as cuts
    crossfade: int  # samples
    skipped: tuple[int, ...] = ()  # positions (played time) of hits that could not get their own region

    @property
    def empty(self) -> bool:
        return not self.cuts

    def boundaries(self) -> np.ndarray:
        """Output positions where each region starts (samples)."""
        return np.round(np.asarray(self.cuts, float) + np.asarray(self.moves, float)).astype(np.int64)


# ------------------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class _Event:
    close_pos: int  # the hit on the edited close mic
    move: float  # samples: how far the close-mic hit sits from where it was played
    played_pos: float  # close_pos - move


def _hit_moves(kit: KitAnalysis, sr: int) -> list[_Event]:
    """One event per hit of the edited close mics, its move (samples) the one its references agreed on;
    hits the edit left in place move by 0, and so do hits no reference could measure (left as they are,
    not given a neighbour's move): either ends the previous region's move."""
    events = []
    for close in kit.edited:
        pair = kit.pair_of(close)
        for pos, move, repeated in zip(pair.positions, kit.moves(close, sr), pair.repeated, strict=True):
            if not repeated:  # a stroke heard twice is cut and moved once
                events.append(_Event(close_pos=int(pos), move=float(move), played_pos=float(pos) - float(move)))
    return events


def _one_per_hit(events: list[_Event], key: str, params: RealignParams, sr: int, kit: KitAnalysis) -> list[_Event]:
    """Sort by `key` and keep one event per hit: siblings (Snare Top and Bottom) and an edit's flam
    (the next hit's attack run on ahead of its crossfade) describe the same hit; the one the edit put
    on the grid is the hit itself."""
    events = sorted(events, key=lambda e: getattr(e, key))
    window = params.same_hit_ms * 1e-3 * sr
    kept: list[list[_Event]] = []
    for e in events:
        if kept and getattr(e, key) - getattr(kept[-1][0], key) < window:
            kept[-1].append(e)
        else:
            kept.append([e])
    tempo = kit.tempo
    out = []
    for group in kept:
        if tempo is not None:
            best = min(group, key=lambda e: abs(tempo.grid_error_s(np.array([e.close_pos / sr]))[0]))
            moves = [e.move for e in group if abs(e.close_pos - best.close_pos) < window]
            out.append(_Event(best.close_pos, float(np.median(moves)), best.close_pos - float(np.median(moves))))
        else:
            out.append(group[0])
    return out


def _attacks(kit: KitAnalysis, follow: Follow, events: list[_Event]) -> np.ndarray:
    """Positions of every known hit in the moved group's own audio (samples, sorted); `events` are the
    edited close mics' hits with their moves."""
    edited_close = [n for n in kit.edited if n in kit.hits]
    if follow == "close":
        # unedited close mics are played time already; edited hits map back by their moves
        own = [h.positions for n, h in kit.hits.items() if n not in edited_close]
        moved = [np.array([e.played_pos for e in events])]
        return np.sort(np.concatenate(own + moved)) if own or moved else np.zeros(0)
    return np.sort(np.concatenate([kit.hits[n].positions for n in edited_close]).astype(float))


def plan_edits(kit: KitAnalysis, *, follow: Follow, sr: int, params: RealignParams) -> EditPlan:
    """Where to cut the moved group, and how far to move each region, so every hit is coherent again.

    Positions are on the session timeline; the group is the kit mics the analysis could use (read, at
    the session rate, not silent), never a track it could not."""
    layout = kit.layout
    edited_close = tuple(n for n in kit.edited if n in kit.hits)
    if follow == "close":
        group = tuple(sorted(n for n in layout.tracks if n not in kit.edited))
    else:
        group = tuple(sorted(edited_close))
    crossfade = max(1, int(round(params.crossfade_ms * 1e-3 * sr)))
    if not edited_close or not group:
        return EditPlan(follow=follow, tracks=group, cuts=(), moves=(), crossfade=crossfade)

    key = "played_pos" if follow == "close" else "close_pos"
    measured = _hit_moves(kit, sr)
    events = _one_per_hit(measured, key, params, sr, kit)
    # the group's audio position of each hit, and the displacement that makes it coherent
    sign = 1.0 if follow == "close" else -1.0
    starts = np.array([getattr(e, key) for e in events])
    displacement = np.array([sign * e.move for e in events])
    # How far after the close mic the moved group can hear a hit: its farthest natural lag.
    lags = [p.natural_lag_ms for p in kit.pairs if p.natural_lag_ms is not None and p.reference in layout.tracks]
    late = (max(lags) if lags and follow == "close" else 0.0) * 1e-3 * sr
    protect = params.protect_ms * 1e-3 * sr
    guard = params.attack_guard_ms * 1e-3 * sr
    attacks = _attacks(kit, follow, measured)

    def clear(lo: float, hi: float) -> bool:
        """No hit's attack, nor its first `protect` ms on the farthest mic, touches [lo, hi]."""
        i = np.searchsorted(attacks, lo - late - protect)
        return not (i < len(attacks) and attacks[i] <= hi + guard)

    cuts: list[int] = []
    moves: list[float] = []
    skipped: list[int] = []
    previous_move, previous_cut = 0.0, -np.inf
    for start, move in zip(starts, displacement, strict=True):
        if abs(move - previous_move) < params.min_move_change:
            continue  # the region before already has this move
        run_on = max(0.0, move - previous_move)  # source the earlier region plays again past the cut
        dropped = max(0.0, previous_move - move)  # source of the earlier region the move covers up
        cut = int(np.floor(start - guard - run_on))
        placed = None
        while cut - crossfade - dropped > previous_cut + crossfade:
            if clear(cut - crossfade - dropped, cut + run_on):
                placed = cut
                break
            cut -= max(1, crossfade // 2)
        if placed is None or (cuts and round(placed + move) - crossfade <= round(cuts[-1] + moves[-1])):
            skipped.append(int(round(start)))
            continue
        cuts.append(placed)
        moves.append(float(move))
        previous_move, previous_cut = float(move), float(placed)
    return EditPlan(
        follow=follow, tracks=group, cuts=tuple(cuts), moves=tuple(moves), crossfade=crossfade, skipped=tuple(skipped)
    )


# ---------------------------------------------------------------------------------------- render
FRACTIONAL_TAPS = 32  # each side: a Kaiser-windowed sinc flat to ~20 kHz at 48 kHz
KAISER_BETA = 8.0


@lru_cache(maxsize=1024)
def _fractional_taps(fraction: float) -> np.ndarray:
    """FIR that delays by `fraction` of a sample (0 < fraction < 1), unit gain at DC. Kept per fraction: a
    region and the crossfades either side of it share their move."""
    x = np.arange(-FRACTIONAL_TAPS, FRACTIONAL_TAPS + 1) - fraction
    # a Kaiser window evaluated at the shifted tap positions, so it stays centred on the true delay
    window = i0(KAISER_BETA * np.sqrt(np.clip(1 - (x / (FRACTIONAL_TAPS + 1)) ** 2, 0, 1))) / i0(KAISER_BETA)
    taps = np.sinc(x) * window
    taps = taps / taps.sum()
    taps.setflags(write=False)
    return taps


def shifted(x: np.ndarray, move: float, lo: int, hi: int) -> np.ndarray:
    """x delayed by `move` samples, output positions [lo, hi); zeros outside x. x: (n, channels)."""
    whole = int(np.floor(move))
    fraction = move - whole
    n = len(x)
    pad = FRACTIONAL_TAPS if fraction else 0
    src_lo, src_hi = lo - whole - pad, hi - whole + pad
    if src_lo >= 0 and src_hi <= n:  # inside x (nearly always): read in place
        segment = np.asarray(x[src_lo:src_hi], np.float64)
    else:
        segment = np.zeros((src_hi - src_lo, x.shape[1]))
        a, b = max(src_lo, 0), min(src_hi, n)
        if b > a:
            segment[a - src_lo : b - src_lo] = x[a:b]
    if not fraction:
        return segment
    taps = _fractional_taps(fraction)
    out = np.empty((hi - lo, x.shape[1]))
    for c in range(x.shape[1]):
        # y[n] = sum_k taps[k] x[n - whole - k]: a 'valid' convolution of the padded segment
        out[:, c] = np.convolve(segment[:, c], taps, mode="valid")
    return out


def crossfade_gains(length: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-power fade-out and fade-in gains (cos, sin): out**2 + in**2 == 1 at every sample."""
    theta = 0.5 * np.pi * (np.arange(length) + 0.5) / length
    return np.cos(theta), np.sin(theta)


def render(x: np.ndarray, plan: EditPlan, *, start: int = 0) -> np.ndarray:
    """One track of the moved group with the plan applied. x: (frames, channels), float64; same shape out.

    start : the timeline position (samples) of x[0], the stem's BWF offset: the plan's cuts are on the
    session timeline, the stem's samples are its own.
    """
    n = len(x)
    if plan.empty:
        return x.copy()
    bounds = plan.boundaries() - start
    moves = (0.0, *plan.moves)
    fade_out, fade_in = crossfade_gains(plan.crossfade)
    # Python ints: np.clip per numpy scalar cost 0.3 s a session
    edges = [0, *(min(max(int(b), 0), n) for b in bounds), n]
    if all(a <= b for a, b in zip(edges, edges[1:], strict=False)):  # (always, for a plan from plan_edits)
        out = np.empty_like(x)  # every sample is written below: the first region as it is, the others moved
        out[: edges[1]] = x[: edges[1]]
    else:
        out = x.copy()
    for k in range(1, len(moves)):
        lo, hi = edges[k], edges[k + 1]
        if hi > lo:
            out[lo:hi] = shifted(x, moves[k], lo, hi)
        f_lo = min(max(int(bounds[k - 1]) - plan.crossfade, 0), n)
        f_hi = edges[k]
        if f_hi > f_lo and moves[k] != moves[k - 1]:  # a boundary that moves nothing needs no fade
            m = f_hi - f_lo
            earlier = shifted(x, moves[k - 1], f_lo, f_hi)
            later = shifted(x, moves[k], f_lo, f_hi)
            out[f_lo:f_hi] = earlier * fade_out[-m:, None] + later * fade_in[-m:, None]
    return out
