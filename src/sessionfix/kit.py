"""Kit coherence: which close mics were moved hit by hit, how far each hit moved, and the mic delays.

Conventions
- Hit positions are samples on the session timeline; lags and moves in the results are milliseconds.
  A lag is the arrival of a hit at the reference after its attack on the close mic (> 0: later).
  `move_ms` is how far the close-mic hit sits from where it was played (> 0: later); it is the close
  mic's, agreed by all its references, so a pair's `lag_ms` is about `natural_lag_ms - move_ms`.
- Input: the per-hit shifts of `lags.measure_kit` (relative, per pair and agreed per close mic). This
  module only decides what they mean:
  * An edit moves some hits of a close mic and leaves the others where they were played, so the unmoved
    hits share one shift and the moved ones left it. The anchor is the densest tight cluster of shifts,
    three hits or more, accepted only when it is far denser than the moved hits around it would make by
    chance (a Poisson tail test), so it holds at any share of unmoved hits. A cluster whose hits sit on
    the quantise lattice as the moved ones do, or that would put the drum farther than the kit allows
    (beyond the other drums; heard at every overhead before its close mic) is moved hits sharing a move.
  * A hit is moved when its shift leaves the anchor by more than the measurement's own noise allows (the
    references' disagreement) and its references agree on it. A close mic is edited when any hit moved
    and the moved hits mostly moved at least halfway towards the grid, as a quantise does (an edit of
    three hits or fewer must also move them 1 ms or more, seen by nearly every reference).
  * Where every hit moved (a 100% quantise), nothing in the audio fixes the natural lag: each reference's
    lag is taken from the close mics that were not edited (else a nominal overhead's), within what each
    reference's distance allows (`natural_lag_basis = "geometry"`); siblings on one drum share it.
  * The natural lag of a pair is where its direct sound arrives. Farther than a reference's distance
    allows is a delayed reference; a close mic heard after an overhead is a delayed close mic. Both are
    `mic_delay` findings, never `coherent`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from scipy.special import bdtrc, pdtrc

from .findings import Finding
from .grid import Tempo, estimate_tempo, lattice, straight_grid
from .lags import Consensus, LagParams, PairLags, weighted_median
from .onsets import LOUD_DB, Hits, MixHits, OnsetParams
from .roles import KitLayout, Role, is_underside, normalise_name

PairState = Literal["coherent", "constant_offset", "partially_quantised"]
NaturalBasis = Literal["unmoved_hits", "geometry", "none"]

# Farthest a reference of each role can plausibly be from the kit, as a lag in ms; more is a routing or
# latency fault. 8 ms is 2.7 m of air: an overhead higher than any ceiling allows.
MAX_PLAUSIBLE_LAG_MS: dict[str, float] = {"overhead": 8.0, "room": 30.0}
# The lag of a typical placement, used to size a mic delay: an overhead ~1 m above the kit (2.6-3.4 ms
# on the real kits measured), a room pair ~2.8 m away (~8 ms).
NOMINAL_LAG_MS: dict[str, float] = {"overhead": 3.0, "room": 8.0}
EARLY_TOLERANCE_MS = 0.5  # a direct lag this far below 0 is beyond the measurement's error: a late close mic
KIT_SPREAD_MS = 5.0  # the drums of a kit lie within ~1.5 m of each other: their lags to one mic differ by less
# ...and no drum sits more than ~1 m farther from an overhead than the kit's other drums (a kick at the floor
# against toms 0.5 m higher: 0.2-0.5 ms on the eval kits; a snare reads nearer than its toms). "Unmoved"
# hits that would put it farther are moved hits that happen to share a move (a quantise at 85 % strength:
# Snare Bottom read 4.1-5.1 ms farther than the toms, then its top mic's moves 6.8 ms off through it)
FARTHER_THAN_KIT_MS = 3.0
# A kick's direct sound is placed up to ~2.9 ms late (it rises slowly under the body's build-up; real kit
# 1.1 ms median, render.py 2.9 ms p90): its anchor is judged with that much more room (Audiophob's and
# HardElectro1's true unmoved kick hits read 3.1-3.9 ms beyond their toms)
FARTHER_ALLOWANCE_MS: dict[str, float] = {"kick": 2.0}
# The references' implied delays of a late close mic agree within this: the spread of real overhead and
# room distances around their nominal lags.
DELAY_AGREEMENT_MS = 4.0


@dataclass(frozen=True)
class KitParams:
    """Kit analysis settings."""

    # Smaller moves are not reported, whatever the precision: a real kit's natural lag varies by 0.05-0.1 ms
    # from hit to hit (stick position), and a drum sounding at the same moment bends a hit's lag by ~0.2 ms.
    min_move_ms: float = 0.3
    # An edit of a few hits must move them this far: a kick and a tom struck together bend the kick's lag
    # by up to 0.5 ms on real kits, and a kit played to a click sits on the grid, so the grid test cannot
    # tell such a hit from a quantised one.
    few_hits: int = 3
    min_lone_move_ms: float = 1.0
    same_stroke_ms: float = 8.0  # two hits of one drum played closer than this are one stroke seen twice
    noise_factor: float = 4.0  # a hit moved when it left the anchor by this many noise spreads
    # Unmoved hits lie within twice the noise of each other, or within 1-4 times this: a real kit's natural
    # lag varies this much from hit to hit (the widths are all tried, the most significant cluster wins)
    natural_spread_ms: float = 0.05
    min_cluster: int = 3  # unmoved hits needed to anchor the natural lag
    cluster_p: float = 0.01  # the anchor must be this unlikely to be a chance cluster of moved hits
    min_hits: int = 8  # fewer measured hits cannot show a pattern nor place the direct sound
    toward_grid_share: float = 0.6  # share of moved hits that must have moved towards the grid
    # ...and on a grid other than the drummer's beat map (the DAW's straight lattice, found on the hits
    # themselves), a share this unlikely for hits that came nearer the grid by chance (a quarter of them)
    lattice_p: float = 0.001
    onsets: OnsetParams = field(default_factory=OnsetParams)
    lags: LagParams = field(default_factory=LagParams)


@dataclass(frozen=True)
class PairAnalysis:
    """One close mic against one reference mic, hit by hit."""

    close: str
    reference: str
    instrument: Role
    positions: np.ndarray  # int64, samples: the close mic's hits
    lags_ms: np.ndarray  # float, this pair's own measurement, NaN where unmeasured
    moves_ms: np.ndarray  # float, the close mic's move agreed by its references, NaN where unknown
    moved: np.ndarray  # bool: hits the edit moved (beyond the measurement's noise and MIN_MOVE)
    repeated: np.ndarray  # bool: a stroke heard a second time (an edit's flam, bleed just before a stroke)
    confidence: np.ndarray  # float 0..1: how well the pair's template explains each hit
    natural_lag_ms: float | None
    natural_lag_basis: NaturalBasis
    spread_ms: float | None  # robust standard deviation of the lags (1.4826 x MAD)
    state: PairState

    @property
    def measured(self) -> np.ndarray:
        return ~np.isnan(self.lags_ms)


@dataclass(frozen=True)
class KitAnalysis:
    layout: KitLayout  # the kit mics analysed: read, at the session rate, not silent
    hits: dict[str, Hits]  # per close mic, own-drum hits
    pairs: tuple[PairAnalysis, ...]
    edited: tuple[str, ...]  # close mics judged to have been moved hit by hit
    moved_hits: int  # distinct hits moved on the edited side (one per hit of the group)
    tempo: Tempo | None
    findings: tuple[Finding, ...]
    found: dict[str, Hits] = field(default_factory=dict)  # per close mic, its hits as detected on it alone

    def pair_of(self, close: str) -> PairAnalysis:
        """A pair of the close mic `close`: every one carries the mic's hits, moves and repeats."""
        return next(p for p in self.pairs if p.close == close)

    def moves(self, close: str, sr: int) -> np.ndarray:
        """Samples per hit of the edited close mic `close`: how far the edit moved it (0 where it did not)."""
        pair = self.pair_of(close)
        return np.where(pair.moved, pair.moves_ms, 0.0) * sr / 1e3

    def untimed_hits(self) -> int:
        """Strokes of the edited close mics that no reference could time: their moves are unknown, and
        `align` leaves them where they sit."""
        count = 0
        for close in self.edited:
            pair = self.pair_of(close)
            count += int(np.sum(np.isnan(pair.moves_ms) & ~pair.repeated))
        return count


# ------------------------------------------------------------------------------------- anchor
def _anchor(shifts: np.ndarray, *, half_widths: tuple[float, ...], params: KitParams) -> tuple[float | None, float]:
    """The shift the unmoved hits share (samples) and the chance that moved hits gather so by chance, or
    (None, 1) when no window holds `min_cluster` hits.

    For each candidate width, the densest window holding `min_cluster` hits or more is a candidate. The
    hits outside it give the density moved hits would have there (the larger of the density within 20
    widths and their overall density), and the cluster must be improbable under it: a Poisson tail,
    corrected for the number of windows and widths tried. The most improbable candidate wins.
    """
    values = np.sort(shifts[~np.isnan(shifts)])
    n = len(values)
    best_p, best_centre = np.inf, None
    for half_width in half_widths:
        ends = np.searchsorted(values, values + 2 * half_width, side="right")
        counts = ends - np.arange(n)
        if not n or counts.max() < params.min_cluster:
            continue
        first = int(np.argmax(counts))
        k = int(counts[first])
        centre = float(np.median(values[first : ends[first]]))
        outside = np.concatenate((values[:first], values[ends[first] :]))
        reach = 20 * half_width
        local = np.sum(np.abs(outside - centre) <= reach) * (2 * half_width) / (2 * reach)
        overall = len(outside) * (2 * half_width) / max(4 * (_robust_spread(outside) or 0.0), 2 * half_width)
        p = pdtrc(k - 1, max(local, overall, 1e-3)) * n * len(half_widths)  # P(Poisson >= k)
        if p < best_p:
            best_p, best_centre = p, centre
    return best_centre, min(float(best_p), 1.0)


# ------------------------------------------------------------------------------------ analysis
@dataclass(frozen=True)
class _CloseMic:
    """What the analysis decided about one close mic."""

    anchor: float  # samples: the shift of an unmoved hit, in the frame of its consensus
    basis: NaturalBasis
    moves: np.ndarray  # samples per hit (> 0 later than played), NaN unknown
    moved: np.ndarray  # bool per hit: moved by the edit, a stroke heard twice counted once
    repeated: np.ndarray  # bool per hit: the other hearing of a stroke heard twice
    edited: bool
    # bool per hit: a stroke its references place at the anchor (none where no hit was left unmoved)
    unmoved: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def _noise(agreed: Consensus, sr: int) -> float:
    """Samples: the precision of one hit's shift (the references' disagreement; one reference: typical)."""
    return agreed.noise if np.isfinite(agreed.noise) else 0.02e-3 * sr


def _min_move(agreed: Consensus, sr: int, params: KitParams) -> float:
    """Samples: the smallest shift from the anchor that counts as a move (beyond the measurement's noise)."""
    return max(params.noise_factor * _noise(agreed, sr), params.min_move_ms * 1e-3 * sr)


def _unmoved_anchor(
    agreed: Consensus,
    positions: np.ndarray,
    *,
    tempo: Tempo | None,
    step_s: float | None,
    sr: int,
    params: KitParams,
) -> float | None:
    """The shift of the unmoved hits (samples), or None. A cluster the Poisson test alone finds likely
    enough by chance still anchors where its hits sit off the lattice a full-strength quantise put the
    other hits on: both by chance is the product of the two (real partial_exclude at full strength, an
    "exclude within 0.8 ms": four of 40 kick hits within 1.9 samples, p = 0.014, every one 0.3-0.7 ms off
    the lattice that 35 of 35 moved hits sit on)."""
    noise, natural = _noise(agreed, sr), params.natural_spread_ms * 1e-3 * sr
    half_widths = (max(2 * noise, 0.5), natural, 2 * natural, 4 * natural)
    centre, p = _anchor(agreed.shift, half_widths=half_widths, params=params)
    if centre is None or p <= params.cluster_p:
        return centre
    near = np.abs(agreed.shift - centre) <= half_widths[0]
    far = np.abs(agreed.shift - centre) > _min_move(agreed, sr, params)
    odds = _lattice_odds(positions, moved=far, cluster=near, tempo=tempo, step_s=step_s, sr=sr)
    return centre if odds is not None and p * odds[0] <= params.cluster_p else None


def _geometric_anchor(
    pairs: list[tuple[str, PairLags]],
    offsets: np.ndarray,
    geometry: dict[str, float],
    *,
    roles: dict[str, Role],
    sr: int,
) -> tuple[float, NaturalBasis, float]:
    """The anchor of a close mic whose every hit moved: each reference's natural lag taken as that reference's
    lag from the unedited close mics (`geometry`, samples), else its role's nominal lag (overheads only:
    a room's distance varies too much), clamped within what each reference's distance allows. Also how
    far the references' candidates disagree (samples): how well this mic's position fits the others'."""
    candidates, weights, of_pair = [], [], []
    for i, ((reference, p), offset) in enumerate(zip(pairs, offsets, strict=True)):
        if not np.isfinite(p.direct_lag):
            continue
        if reference in geometry:
            candidates.append(geometry[reference] - p.direct_lag - offset)
            weights.append(1.0)
        elif roles[reference] == "overhead":
            candidates.append(NOMINAL_LAG_MS["overhead"] * 1e-3 * sr - p.direct_lag - offset)
            weights.append(0.25)
        else:
            continue
        of_pair.append(i)
    if not candidates:
        return 0.0, "none", np.inf
    anchor = weighted_median(np.array(candidates), np.array(weights))
    deviation = np.abs(np.array(candidates) - anchor)
    disagreement = float(np.median(deviation))
    # a reference whose candidate puts the drum farther from the others' than a kit is wide read a later
    # sound as its direct one (a crash on every bar over the kick: 8.6 ms off): it sets no upper bound
    # (its lower one holds: no reference hears a drum before its close mic, and a misread comes later)
    misread = {i for i, d in zip(of_pair, deviation, strict=True) if d > KIT_SPREAD_MS * 1e-3 * sr}
    anchor, _ = _within_geometry(
        anchor, pairs, offsets, roles=roles, sr=sr, bounded_above=[i not in misread for i in range(len(pairs))]
    )
    if disagreement > KIT_SPREAD_MS * 1e-3 * sr:
        # the references place this drum farther apart than a kit is wide: their direct sounds are not
        # this drum's (a ride over the snare); its natural lags stay unknown, its moves relative
        return anchor, "none", disagreement
    return anchor, "geometry", disagreement


def _analyse_close(
    hits: Hits,
    agreed: Consensus,
    anchor: float,
    basis: NaturalBasis,
    *,
    tempo: Tempo | None,
    sr: int,
    params: KitParams,
    lattice_step: float | None = None,
    rooms: tuple[bool, ...] = (),
) -> _CloseMic:
    """Which hits of one close mic moved, given the shift of its unmoved hits (`anchor`, samples).
    `lattice_step` : the session's quantise lattice (s per sixteenth), when one mic shows it. `rooms` :
    per reference of `agreed`, whether it is a room mic."""
    shifts = agreed.shift
    n_refs = len(agreed.references)
    min_move = _min_move(agreed, sr, params)
    moves = anchor - shifts
    # a stroke heard twice (an edit's flam, bleed just before a stroke) is the better-explained of the two
    same_stroke = int(params.same_stroke_ms * 1e-3 * sr)
    repeated = _seen_twice(hits.positions, moves, agreed.confidence, same_stroke)
    # ...and two hits found that close together on the mic are one stroke too, whatever lags they read
    # (an edit point's copy of the attack 6 ms ahead of it, its lag misread by 18 ms)
    repeated |= _seen_twice(hits.positions, np.where(np.isnan(moves), np.nan, 0.0), agreed.confidence, same_stroke)
    # a hit explained less than half as well as the mic's typical hit (a sample's own lead-in found as a
    # hit of its own, its lag locked on a repeat of the attack) is not measured well enough: no move
    measured = ~np.isnan(shifts)
    typical = float(np.median(agreed.confidence[measured])) if measured.any() else 1.0
    moves = np.where(agreed.confidence >= 0.5 * typical, moves, np.nan)
    # a room hears reflections as strong as the direct sound: a hit only a room mic places is not placed
    if any(rooms) and n_refs >= 2:
        heard = ~np.isnan(agreed.pair_shifts)
        only_rooms = ~heard[[not room for room in rooms]].any(axis=0)
        moves = np.where(only_rooms & (agreed.agreeing < 2), np.nan, moves)
    # ...and within `same_stroke_ms` of a hit that is measured, it is that stroke heard twice (no drum is
    # struck twice so fast): listed once, as the measured hit
    repeated |= np.isnan(moves) & _near_measured(hits.positions, moves, same_stroke)
    # ...and a sound that follows its stroke at a fixed time with a fixed difference of lag (a sampled
    # kick's second transient 79 ms on, heard 14.5 ms later in the far mics) is that stroke's, not one
    # an edit moved on its own
    repeated |= _second_sounds(hits.positions, hits.levels_db, moves, sr, params)
    stroke = ~repeated
    confirmed = (agreed.agreeing >= min(2, n_refs)) & ~np.isnan(moves)
    unmoved = np.zeros(len(shifts), bool)
    loud = hits.levels_db >= hits.loud_db - LOUD_DB  # strokes of the mic's own drum
    if basis == "unmoved_hits":
        moved = confirmed & (np.abs(np.nan_to_num(moves)) > min_move)
        # a mic that hears more of other drums than of its own (a rarely played tom), whose unmoved hits
        # are none of its own strokes, is anchored on bleed: its strokes' "moves" are their natural lag
        unmoved = confirmed & stroke & ~moved
        if np.sum(loud & confirmed) < np.sum(~loud & confirmed) and not np.any(unmoved & loud):
            moved = np.zeros(len(shifts), bool)
            # ...and its natural lags are the bleed's paths, not its drum's (render.py Audiophob's Tom 2,
            # 4 strokes among 21 hits: OH L -29 ms, a false "Tom 2 delayed 32 ms")
            basis = "none"
    else:
        # no hit was left where it was played: every hit moved, if the hits disagree beyond the noise at all
        spread = _robust_spread(shifts[confirmed & stroke]) or 0.0
        moved = confirmed if spread > min_move else np.zeros(len(shifts), bool)
    if np.sum(moved & stroke) <= params.few_hits:
        # a few moved hits must stand on firm ground: moved by more than a drum sounding with them bends a
        # lag, seen by (nearly) every reference, explained as well as the mic's typical hit, and strokes of
        # the mic's own drum at its loud level (a quieter event on a rarely played tom's mic is as likely
        # another drum's bleed or its sympathetic ring, whose lag is not the drum's)
        moved &= np.abs(np.nan_to_num(moves)) > params.min_lone_move_ms * 1e-3 * sr
        moved &= (agreed.agreeing >= max(2, n_refs - 1)) & (agreed.confidence >= typical) & loud
    # an edit moves each hit by its own deviation from the grid, and a player's deviations differ: moves
    # that are all one value are one other sound's path to the mic, not an edit (render.py
    # ElectricEmpireKit, which has no tom: a Tom 2 mic anchored on the kick's and snare's bleed read six
    # hi-hat hits 17.4-18.2 ms off it, a false partial quantisation on the natural render)
    if np.sum(moved & stroke) > params.few_hits:
        spread = _robust_spread(moves[moved & stroke]) or 0.0
        if spread * 1e3 / sr < ONE_PATH_SPREAD_MS:
            moved = np.zeros(len(shifts), bool)
    edited = bool(np.any(moved & stroke)) and int(np.sum(~np.isnan(shifts))) >= params.min_hits
    if edited and tempo is not None:
        # the grid is judged on the moved hits explained at least as well as the mic's typical hit: a
        # misread lag (a sample's repeat of its attack read on a room's reflection) is no hit the quantise
        # left off the grid, and it is found among the worse explained half
        clear = moved & stroke & (agreed.confidence >= typical)
        judged = clear if np.sum(clear) >= params.min_hits else moved & stroke
        edited = _quantised(hits.positions, moves, judged, tempo, sr, params, lattice_step)
    if not edited:
        moved = np.zeros(len(shifts), bool)
    return _CloseMic(
        anchor=anchor,
        basis=basis,
        moves=moves,
        moved=moved & stroke,
        repeated=repeated,
        edited=edited,
        unmoved=unmoved if edited else np.zeros(len(shifts), bool),
    )


ONE_PATH_SPREAD_MS = 0.5  # moved hits whose moves spread less (robust SD) share one path: the edited drums of
# the eval renders spread 2.1 ms at the least (300 of them, 3-44 moved hits each), a hit's lag is read to ~0.1 ms
SOUND_MS = 150.0  # a stroke's own later transients (a sample's repeat of its attack) come within this
SOUND_GAP_MS = 2.0  # ...at the same time after it (one sample's; its velocity layers vary this much)
SOUND_SHARE = 0.25  # share of the close-following hits that must show one gap and one lag difference


def _second_sounds(
    positions: np.ndarray, levels_db: np.ndarray, moves: np.ndarray, sr: int, params: KitParams
) -> np.ndarray:
    """Hits that are their previous hit's own later sound: quieter than it, at least `min_cluster` (and
    SOUND_SHARE of the quieter hits following another within SOUND_MS) follow it by one gap (within
    SOUND_GAP_MS) and read one difference of move (within `min_move_ms`), a non-zero one. Two strokes an
    edit moved each on its own differ by the two timing errors the quantise removed, which almost never
    repeat to 0.3 ms; a sound of the stroke's (a transient its far mics hear at another lag) differs by
    its own constant."""
    known = np.flatnonzero(~np.isnan(moves))
    marked = np.zeros(len(positions), bool)
    if len(known) < 2:
        return marked
    gap = np.diff(positions[known]) * 1e3 / sr
    diff = np.diff(moves[known]) * 1e3 / sr
    quieter = np.diff(levels_db[known]) < 0
    # (two hearings of one stroke, an edit's flam, read one played time: `_seen_twice` decides those)
    one_stroke = np.abs(gap - diff) <= params.same_stroke_ms
    near = np.flatnonzero((gap > params.same_stroke_ms) & (gap < SOUND_MS) & quieter & ~one_stroke)
    tolerance = params.min_move_ms
    best = np.zeros(0, int)
    for i in near:
        if abs(diff[i]) <= tolerance:
            continue  # the same move: inside the stroke's region already (`_inside_a_moved_region`)
        alike = near[(np.abs(gap[near] - gap[i]) <= SOUND_GAP_MS) & (np.abs(diff[near] - diff[i]) <= tolerance)]
        if len(alike) > len(best):
            best = alike
    if len(best) >= max(params.min_cluster, SOUND_SHARE * len(near)):
        marked[known[best + 1]] = True
    return marked


def _near_measured(positions: np.ndarray, moves: np.ndarray, window: int) -> np.ndarray:
    """Hits within `window` samples of another hit whose move is known."""
    known = np.sort(positions[~np.isnan(moves)])
    if not len(known):
        return np.zeros(len(positions), bool)
    j = np.clip(np.searchsorted(known, positions), 0, len(known) - 1)
    nearest = np.minimum(np.abs(known[j] - positions), np.abs(known[np.maximum(j - 1, 0)] - positions))
    return nearest < window


def _seen_twice(positions: np.ndarray, moves: np.ndarray, confidence: np.ndarray, window: int) -> np.ndarray:
    """Hits that hear another hit's stroke a second time: their played positions (position - move) fall
    within `window` samples of each other; all but one of each such group are marked.

    The stroke is the latest hearing, unless it is explained less than half as well as an earlier one. An
    edit's flam is the original attack replayed by the run-on before the region moved later, and bleed
    comes just before a stroke: in both the stroke itself is the later one (a ring after a stroke is
    masked by the onset detection, and is explained far worse than the stroke).
    """
    played = positions - moves
    known = np.flatnonzero(~np.isnan(played))
    order = known[np.argsort(played[known], kind="stable")]
    twice = np.zeros(len(positions), bool)
    start = 0
    for end in range(1, len(order) + 1):
        if end < len(order) and played[order[end]] - played[order[start]] < window:
            continue
        group = order[start:end]
        if len(group) > 1:
            best = float(np.nanmax(confidence[group]))
            eligible = [i for i in group if confidence[i] >= 0.5 * best]
            stroke = max(eligible, key=lambda i: positions[i])
            twice[[i for i in group if i != stroke]] = True
        start = end
    return twice


def _within_geometry(
    anchor: float,
    pairs: list[tuple[str, PairLags]],
    offsets: np.ndarray,
    *,
    roles: dict[str, Role],
    sr: int,
    bounded_above: list[bool] | None = None,
) -> tuple[float, bool]:
    """The anchor clamped so that no reference's natural lag is negative or farther than its role allows
    (the latter only for the references `bounded_above`, default all); whether the clamp decided."""
    low, high = -np.inf, np.inf
    for i, ((reference, p), offset) in enumerate(zip(pairs, offsets, strict=True)):
        if not np.isfinite(p.direct_lag):
            continue
        natural_at_zero = p.direct_lag + offset  # natural lag when anchor = 0
        low = max(low, -natural_at_zero)
        if bounded_above is None or bounded_above[i]:
            high = min(high, MAX_PLAUSIBLE_LAG_MS.get(roles[reference], 30.0) * 1e-3 * sr - natural_at_zero)
    if low > high:
        return anchor, False  # the references disagree on what is plausible: leave the assumption alone
    clamped = float(np.clip(anchor, low, high))
    return clamped, clamped != anchor


CHANCE_TOWARDS = 0.25  # share of hits moved at random (a bend, a misread) that come halfway to a grid


def _quantised(
    positions: np.ndarray,
    moves: np.ndarray,
    moved: np.ndarray,
    tempo: Tempo,
    sr: int,
    params: KitParams,
    step_s: float | None = None,
) -> bool:
    """Whether the moved hits moved towards the grid: at least `toward_grid_share` of them moved halfway
    or more from where they were played to the grid they were quantised to.

    A quantise does that (all the way at full strength, 70-80% at the strengths engineers use); a drum
    sounding at the same moment bends a hit's lag by a fraction of a ms in either direction, which almost
    never halves a human timing error of several ms. The grid is the drummer's beat map, or a DAW's
    straight lattice (`straight_grid`: its step the mic's own, or the session's `step_s`, read on the mic
    that shows it best), at the phase the mic's own hits share (its attacks sit a constant few ms after
    the grid point their region was snapped to: a sampled kick's lead-in, the mic's distance). A beat
    map that follows a drifting drummer hides a quantise below full strength; a lattice fitted to the
    hits themselves can flatter a few, so there the share must also be improbable by chance
    (binomial tail at CHANCE_TOWARDS below `lattice_p`, for the two lattices tried).
    """
    snapped = moved & ~_inside_a_moved_region(positions, moves, moved, sr)
    now_s, played_s = positions[snapped] / sr, (positions[snapped] - moves[snapped]) / sr
    if not len(now_s):
        return False

    def came_closer(grid: Tempo) -> int:
        return int(np.sum(np.abs(grid.grid_error_s(now_s)) <= 0.5 * np.abs(grid.grid_error_s(played_s))))

    n = len(now_s)
    if came_closer(tempo) >= params.toward_grid_share * n:
        return True
    lattices = [
        straight_grid(positions / sr, bpm=tempo.bpm, end_s=tempo.end_s),
        straight_grid(positions / sr, bpm=tempo.bpm, end_s=tempo.end_s, step_s=step_s) if step_s else None,
    ]
    for grid in lattices:
        if grid is None:
            continue
        k = came_closer(grid)
        if k >= params.toward_grid_share * n and 2 * bdtrc(k - 1, n, CHANCE_TOWARDS) <= params.lattice_p:
            return True
    return False


# A DAW's full-strength quantise puts each moved attack within ON_LATTICE_MS of its lattice point (the real
# kit's snare: 97-100 % of moved hits; a simulated kit whose attacks read under a hi-hat's bleed: 82 %)
ON_LATTICE_MS = 0.2
ON_LATTICE_SHARE = 0.8  # share of the moved hits on the lattice that shows a full-strength quantise
# A played hit lands that close to the grid far more rarely: at most this share of the hits an "exclude
# within" leaves in place (the real kit's: 0 of 21 within 0.25 ms at a 2-3 ms window; 1-2 of 8-14 within
# 0.2 ms at 0.8-1.6 ms)
PLAYED_ON_LATTICE = 0.2


def _lattice_odds(
    positions: np.ndarray,
    *,
    moved: np.ndarray,
    cluster: np.ndarray,
    tempo: Tempo | None,
    step_s: float | None,
    sr: int,
) -> tuple[float, float] | None:
    """How likely the cluster's hits sit where they do against the lattice the moved hits sit on, as
    (probability if they are moved hits, probability if they are played ones): each within ON_LATTICE_MS
    of it with the moved hits' odds, or with PLAYED_ON_LATTICE. None where the moved hits show no
    full-strength quantise."""
    moved_s = positions[moved] / sr
    if tempo is None or not cluster.any() or len(moved_s) < 4:
        return None
    fit = lattice(moved_s, bpm=tempo.bpm, step_s=step_s)
    if fit is None or fit[2] < ON_LATTICE_SHARE * len(moved_s):
        return None
    step, phase = fit[0], fit[1]
    offset = positions[cluster] / sr - phase
    on = int(np.sum(np.abs(offset - np.round(offset / step) * step) <= ON_LATTICE_MS * 1e-3))
    off = len(offset) - on
    moved_on = (fit[2] + 0.5) / (len(moved_s) + 1)  # a misread attack off the lattice stays possible
    return moved_on**on * (1 - moved_on) ** off, PLAYED_ON_LATTICE**on * (1 - PLAYED_ON_LATTICE) ** off


def _snapped_to_the_lattice(
    positions: np.ndarray, mic: _CloseMic, *, tempo: Tempo | None, step_s: float | None, sr: int
) -> bool:
    """Whether the "unmoved" hits of an edited close mic are more likely hits a full-strength quantise
    moved by one amount by chance (three strokes of forty sharing a move within 4 samples is common) than
    hits left where they were played (`_lattice_odds`)."""
    odds = _lattice_odds(positions, moved=mic.moved, cluster=mic.unmoved, tempo=tempo, step_s=step_s, sr=sr)
    return odds is not None and odds[0] > odds[1]


REGION_MS = 80.0  # a sample's repeat of its attack, a flam or a ring, moved with its stroke, comes this soon
SAME_REGION_MS = 2.0  # ...and reads the stroke's move to within this (its lag read on a different sound)


def _inside_a_moved_region(positions: np.ndarray, moves: np.ndarray, moved: np.ndarray, sr: int) -> np.ndarray:
    """Moved hits that follow another moved hit within REGION_MS by the same move (within SAME_REGION_MS):
    a quantise snaps each region by its first transient and carries the rest of the region along (an
    electronic kick's repeat of its attack 79 ms later), so only the first is where the grid put it."""
    index = np.flatnonzero(moved)
    inside = np.zeros(len(positions), bool)
    for previous, current in zip(index[:-1], index[1:], strict=True):
        close_by = positions[current] - positions[previous] <= REGION_MS * 1e-3 * sr
        inside[current] = close_by and abs(moves[current] - moves[previous]) <= SAME_REGION_MS * 1e-3 * sr
    return inside


def _session_lattice(hits: dict[str, Hits], tempo: Tempo | None, sr: int) -> float | None:
    """The step (s per sixteenth) of the quantise lattice, from the close mic whose hits sit on it most
    exactly (the most within 0.2 ms, else within 1 ms): a DAW quantises every edited track to one grid,
    but a mic whose samples start a varying fraction of a ms after their grid point (a real kick's
    velocity layers) does not show its period precisely on its own."""
    if tempo is None:
        return None
    fits = [f for h in hits.values() if (f := lattice(h.positions / sr, bpm=tempo.bpm)) is not None]
    return max(fits, key=lambda f: (f[2], f[3]))[0] if fits else None


def _robust_spread(x: np.ndarray) -> float | None:
    x = x[~np.isnan(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else None


def analyse_kit(
    *,
    layout: KitLayout,
    roles: dict[str, Role],
    hits: dict[str, Hits],
    lags: dict[tuple[str, str], PairLags],
    agreed: dict[str, Consensus],
    tempo: Tempo | None,
    sr: int,
    params: KitParams,
) -> KitAnalysis:
    """Pair states, the edited close mics, every hit's move and the kit's findings.

    lags : per (close, reference) the pair's shifts (lags.measure_kit); agreed : per close mic the
    consensus of its references. Pure: no audio is read here.
    """
    ms = 1e3 / sr
    pairs: list[PairAnalysis] = []
    closes = [c for c in layout.close if c in agreed]
    own = {c: [(reference, lags[(c, reference)]) for reference in agreed[c].references] for c in closes}
    # first the close mics whose unmoved hits fix their natural lags; their unedited ones then give
    # each reference's distance to the kit, for the close mics whose every hit moved
    step = _session_lattice({name: hits[name] for name in closes}, tempo, sr)
    anchors = {
        name: _unmoved_anchor(agreed[name], hits[name].positions, tempo=tempo, step_s=step, sr=sr, params=params)
        for name in closes
    }
    rooms = {name: tuple(roles[r] == "room" for r in agreed[name].references) for name in closes}
    decided: dict[str, _CloseMic] = {}
    for name, unmoved in anchors.items():
        if unmoved is not None:
            decided[name] = _analyse_close(
                hits[name],
                agreed[name],
                unmoved,
                "unmoved_hits",
                tempo=tempo,
                sr=sr,
                params=params,
                lattice_step=step,
                rooms=rooms[name],
            )
    geometry = _distances(own, agreed, decided, params, roles=roles, sr=sr)
    # an edited mic whose "unmoved" hits would put its drum farther from the overheads than the other
    # drums by more than a kit's size allows is not anchored by them: they are moved hits that happen to
    # share a move (every hit of a partial_cut moved); its moves are read from the geometry instead
    # ...and so are "unmoved" hits that sit on the quantise lattice more as moved hits do than as played
    # ones, or that would have every overhead hear the drum before its own close mic
    for name, mic in list(decided.items()):
        if mic.edited and (
            _farther_than_the_kit(
                own[name], agreed[name].offsets, mic.anchor, geometry, roles=roles, sr=sr, instrument=roles[name]
            )
            or _snapped_to_the_lattice(hits[name].positions, mic, tempo=tempo, step_s=step, sr=sr)
            or _before_the_close_mic(own[name], agreed[name].offsets, mic.anchor, roles=roles, sr=sr)
        ):
            del decided[name]
            anchors[name] = None
    guesses = {
        name: _geometric_anchor(own[name], agreed[name].offsets, geometry, roles=roles, sr=sr)
        for name, unmoved in anchors.items()
        if unmoved is None
    }
    for name, (anchor, basis, _) in guesses.items():
        anchor, basis = _from_sibling(name, anchor, basis, layout, hits, agreed, decided, guesses, sr)
        decided[name] = _analyse_close(
            hits[name],
            agreed[name],
            anchor,
            basis,
            tempo=tempo,
            sr=sr,
            params=params,
            lattice_step=step,
            rooms=rooms[name],
        )
    edited = [name for name in closes if decided[name].edited]
    for close in closes:
        c, mic = agreed[close], decided[close]
        for r, ((reference, p), offset) in enumerate(zip(own[close], c.offsets, strict=True)):
            lags_ms = (p.direct_lag + c.pair_shifts[r]) * ms
            natural = None if mic.basis == "none" else (p.direct_lag + offset + mic.anchor) * ms
            if int(np.sum(~np.isnan(lags_ms))) < params.min_hits:
                natural = None  # too few hits to know where the direct sound is
            elif natural is not None and natural < 0 and (mic.basis == "geometry" or natural >= -EARLY_TOLERANCE_MS):
                # The sound cannot reach the reference before it reached the close mic: a measured lag
                # within the direct-path measurement's error of 0, or an assumed one (every hit moved; a
                # sibling's geometry carried over), is read from 0 (the lags with it; the moves are the same)
                lags_ms, natural = lags_ms - natural, 0.0
            state: PairState = "partially_quantised" if mic.edited else "coherent"
            if natural is not None and not mic.edited and _implausible(natural, roles[reference]):
                state = "constant_offset"
            pairs.append(
                PairAnalysis(
                    close=close,
                    reference=reference,
                    instrument=roles[close],
                    positions=hits[close].positions,
                    lags_ms=lags_ms,
                    moves_ms=mic.moves * ms,
                    moved=mic.moved,
                    repeated=mic.repeated,
                    confidence=p.confidence,
                    natural_lag_ms=natural,
                    natural_lag_basis=mic.basis,
                    spread_ms=_robust_spread(lags_ms),
                    state=state,
                )
            )
    delays = _delay_findings(pairs, layout, roles)
    pairs = _unexplained_early(pairs, {f.track for f in delays if f.track})
    findings = _edit_findings(pairs, decided, tuple(edited), sr) + delays + _unmeasured(agreed, edited, params)
    return KitAnalysis(
        layout=layout,
        hits=hits,
        pairs=tuple(pairs),
        edited=tuple(sorted(edited)),
        moved_hits=_count_moved(hits, decided, sr),
        tempo=tempo,
        findings=tuple(findings),
    )


def _unexplained_early(pairs: list[PairAnalysis], delayed: set[str]) -> list[PairAnalysis]:
    """Natural lags left unknown where a reference hears a close mic's hits before the close mic does,
    beyond the measurement's error, with no delay of that close mic to explain it: no drum reaches an
    overhead or a room before its own close mic.

    When one reference does so for two close mics or more, its own reading failed (a crash on every bar
    masking the direct sound in that overhead): those pairs' lags are unknown. Otherwise the close mic's
    hits are not (only) its drum (bleed of a louder drum on a rarely played tom): its natural lags cannot
    be measured, to any reference. Unknown, not reported."""
    unknown, unknown_pairs = _early_readings(pairs, delayed)
    out = []
    for p in pairs:
        if p.close in unknown or (p.close, p.reference) in unknown_pairs:
            state: PairState = "partially_quantised" if p.state == "partially_quantised" else "coherent"
            p = replace(p, natural_lag_ms=None, state=state)
        out.append(p)
    return out


def _early_readings(pairs: list[PairAnalysis], delayed: set[str]) -> tuple[set[str], set[tuple[str, str]]]:
    """Close mics whose hits are not (only) their drum, and (close, reference) pairs whose reference's
    reading failed, from the natural lags a reference hears before the close mic (beyond the error; close
    mics in `delayed` excepted): see `_unexplained_early`."""
    early = [
        p
        for p in pairs
        if p.natural_lag_ms is not None and p.natural_lag_ms < -EARLY_TOLERANCE_MS and p.close not in delayed
    ]
    closes_per_reference: dict[str, set[str]] = {}
    for p in early:
        closes_per_reference.setdefault(p.reference, set()).add(p.close)
    failed = {reference for reference, closes in closes_per_reference.items() if len(closes) >= 2}
    unknown_pairs = {(p.close, p.reference) for p in early if p.reference in failed}
    return {p.close for p in early if p.reference not in failed}, unknown_pairs


def _from_sibling(
    name: str,
    anchor: float,
    basis: NaturalBasis,
    layout: KitLayout,
    hits: dict[str, Hits],
    agreed: dict[str, Consensus],
    decided: dict[str, _CloseMic],
    guesses: dict[str, tuple[float, NaturalBasis, float]],
    sr: int,
) -> tuple[float, NaturalBasis]:
    """The anchor of a close mic whose every hit moved, tied to a sibling on the same drum (Snare Top and
    Bottom): an edit moves both by the same amount hit by hit, so their anchors differ by the difference of
    their shifts on the same hits. The sibling whose unmoved hits fix its anchor leads; else a mic on top of
    the drum (like the other close mics, unlike one under it) whose references agree best on the guess."""
    others = [o for o in layout.siblings_of(name) if o in agreed]
    measured = [o for o in others if o in decided and decided[o].basis == "unmoved_hits"]
    if measured:
        lead = measured[0]
        lead_anchor, lead_basis = decided[lead].anchor, decided[lead].basis
    else:
        # a mic under its drum is never the lead: its lags are unlike every other mic's
        def fit(o: str) -> tuple[bool, float]:
            return is_underside(o), guesses[o][2]

        candidates = [o for o in others if o in guesses and fit(o) < fit(name)]
        if not candidates:
            return anchor, basis
        lead = min(candidates, key=fit)
        lead_anchor, lead_basis = guesses[lead][0], guesses[lead][1]
    # the same strokes on both mics: the nearest hit of the lead within 6 ms (a bottom mic hears it ~1.6 ms later)
    mine, theirs = hits[name].positions, hits[lead].positions
    j = np.clip(np.searchsorted(theirs, mine), 1, max(len(theirs) - 1, 1)) if len(theirs) else np.zeros(0, int)
    if not len(theirs):
        return anchor, basis
    nearest = np.where(np.abs(theirs[j - 1] - mine) < np.abs(theirs[j] - mine), j - 1, j)
    same = np.abs(theirs[nearest] - mine) <= int(0.006 * sr)
    difference = agreed[name].shift[same] - agreed[lead].shift[nearest[same]]
    difference = difference[~np.isnan(difference)]
    if len(difference) < 3:
        return anchor, basis
    return lead_anchor + float(np.median(difference)), lead_basis


def _distances(
    own: dict[str, list[tuple[str, PairLags]]],
    agreed: dict[str, Consensus],
    decided: dict[str, _CloseMic],
    params: KitParams,
    *,
    roles: dict[str, Role],
    sr: int,
) -> dict[str, float]:
    """Per reference, the median natural lag (samples) of the unedited close mics whose unmoved hits fix it.
    A mic whose anchor puts any reference beyond what its distance allows gives none: one anchor sets all
    its lags, and a tom mic that hears only other drums' bleed can read -30 ms at one overhead and, from
    the same anchor, 3 ms too early at the other (render.py Audiophob, partial_exclude at 118 bpm)."""
    lags: dict[str, list[float]] = {}
    for close, mic in decided.items():
        if mic.edited or mic.basis != "unmoved_hits":
            continue
        counts = {reference: int(p.measured.sum()) for reference, p in own[close]}
        measured = {
            reference: lag
            for reference, lag in _natural_lags(own[close], agreed[close].offsets, mic.anchor).items()
            if counts[reference] >= params.min_hits
        }
        if any(_implausible(lag * 1e3 / sr, roles[reference]) for reference, lag in measured.items()):
            continue
        for reference, lag in measured.items():
            lags.setdefault(reference, []).append(lag)
    return {reference: float(np.median(v)) for reference, v in lags.items()}


def _natural_lags(pairs: list[tuple[str, PairLags]], offsets: np.ndarray, anchor: float) -> dict[str, float]:
    """Per reference whose direct sound was placed, the close mic's natural lag to it (samples) that
    `anchor` (samples, in the frame of the consensus) implies."""
    return {
        reference: p.direct_lag + offset + anchor
        for (reference, p), offset in zip(pairs, offsets, strict=True)
        if np.isfinite(p.direct_lag)
    }


def _farther_than_the_kit(
    pairs: list[tuple[str, PairLags]],
    offsets: np.ndarray,
    anchor: float,
    geometry: dict[str, float],
    *,
    roles: dict[str, Role],
    sr: int,
    instrument: str = "snare",
) -> bool:
    """Whether `anchor` (samples) puts the close mic's natural lag above the unedited close mics' (`geometry`)
    by more than FARTHER_THAN_KIT_MS (plus the instrument's FARTHER_ALLOWANCE_MS) on every overhead that both
    measure (a room's direct sound, weaker than its reflections, is read less surely), or on every reference,
    two or more, where no overhead does."""
    excess = {
        reference: natural - geometry[reference]
        for reference, natural in _natural_lags(pairs, offsets, anchor).items()
        if reference in geometry
    }
    overheads = [e for reference, e in excess.items() if roles[reference] == "overhead"]
    judged = overheads or (list(excess.values()) if len(excess) >= 2 else [])
    limit = FARTHER_THAN_KIT_MS + FARTHER_ALLOWANCE_MS.get(instrument, 0.0)
    return bool(judged) and min(judged) > limit * 1e-3 * sr


def _before_the_close_mic(
    pairs: list[tuple[str, PairLags]], offsets: np.ndarray, anchor: float, *, roles: dict[str, Role], sr: int
) -> bool:
    """Whether `anchor` (samples) has every overhead that measures the drum hear it before its close mic by
    more than a kit's width: no drum does. A few ms early happens (a sample library's overhead channels
    trimmed ahead of its close mics: Millo-Drums' true unmoved snare hits read -2.9 / -1.3 ms; a
    ForzeeStereo kick -4.7 / -2.5 ms); an edited close mic also late by more would lose its anchor, its
    moves then read from the geometry. A reverberant room's reflection read on five of 55 hits anchored a
    render.py snare 12.9 ms off (-9.5 ms at both overheads)."""
    early = [
        natural < -KIT_SPREAD_MS * 1e-3 * sr
        for reference, natural in _natural_lags(pairs, offsets, anchor).items()
        if roles[reference] == "overhead"
    ]
    return bool(early) and all(early)


def _implausible(natural_ms: float, reference_role: str) -> bool:
    return natural_ms > MAX_PLAUSIBLE_LAG_MS.get(reference_role, 30.0) or natural_ms < -EARLY_TOLERANCE_MS


def mix_tempo(hits: MixHits, *, sr: int, end_s: float) -> Tempo | None:
    """The beat map from a one-mic kit's hits: louder hits count more in the periodicity; its loud kick
    and snare hits settle the octave and place the bar lines, as a close mic's do."""
    times = hits.positions / sr
    return estimate_tempo(
        times,
        weights=hits.strengths,
        end_s=end_s,
        downbeat_times_s=times[hits.kick],
        backbeat_times_s=times[hits.snare],
        bpm_hint=hits.bpm,
    )


def kit_tempo(hits: dict[str, Hits], roles: dict[str, Role], *, sr: int, end_s: float) -> Tempo | None:
    """The beat map from the kit's hits (kick, snare and hat; else every close mic): the snare's
    backbeat settles the tempo's octave, kick and snare place the bar lines."""
    chosen = [h for n, h in hits.items() if roles[n] in ("kick", "snare", "hihat")] or list(hits.values())
    if not chosen:
        return None
    times = np.concatenate([h.positions for h in chosen]) / sr

    def first(role: str) -> np.ndarray | None:
        own = [h.positions / sr for n, h in hits.items() if roles[n] == role and len(h)]
        return max(own, key=len) if own else None

    return estimate_tempo(times, end_s=end_s, downbeat_times_s=first("kick"), backbeat_times_s=first("snare"))


def _count_moved(hits: dict[str, Hits], decided: dict[str, _CloseMic], sr: int) -> int:
    """Distinct hits moved on the edited close mics (a kick and a snare hit count as two; one hit seen on
    Snare Top and Snare Bottom as one)."""
    times = np.concatenate([hits[n].positions[m.moved] for n, m in decided.items() if m.edited] or [np.zeros(0)])
    if not len(times):
        return 0
    ordered = np.unique(times)
    return int(1 + np.sum(np.diff(ordered) > int(0.01 * sr)))


def _names(names: list[str] | tuple[str, ...]) -> str:
    return "/".join(n.rsplit(".", 1)[0] for n in names)


def _edit_findings(
    pairs: list[PairAnalysis], decided: dict[str, _CloseMic], edited: tuple[str, ...], sr: int
) -> list[Finding]:
    out: list[Finding] = []
    for track in edited:
        mic = decided[track]
        own = [p for p in pairs if p.close == track]
        positions = own[0].positions[mic.moved]
        moves_ms = mic.moves[mic.moved] * 1e3 / sr
        n = int(mic.moved.sum())
        instrument = own[0].instrument
        typical = float(np.median(np.abs(moves_ms)))
        out.append(
            Finding(
                kind="partial_quantisation",
                severity="error",
                track=track,
                start_s=round(int(positions[0]) / sr, 4),
                end_s=round(int(positions[-1]) / sr, 4),
                value=round(typical, 3),
                unit="ms",
                count=n,
                message=f"{n} {instrument} {'hit was' if n == 1 else 'hits were'} moved on {_names([track])} but not "
                f"on {_names([p.reference for p in own])} (typically {typical:.1f} ms, up to "
                f"{float(np.max(np.abs(moves_ms))):.1f} ms): the kit flams",
                fix="sessionfix align SESSION --out FIXED",
            )
        )
    return out


def _unmeasured(agreed: dict[str, Consensus], edited: list[str], params: KitParams) -> list[Finding]:
    """A close mic (not found edited) whose hits no reference could time, most of them: whether they were
    moved is not known. The edit test reads a pattern among the measured hits; here it speaks for the
    fewer part of the mic's hits, so the report says so rather than calling the mic coherent."""
    out = []
    for close, consensus in agreed.items():
        n = len(consensus.shift)
        unmeasured = int(np.sum(np.isnan(consensus.shift)))
        if close in edited or n < params.min_hits or 2 * unmeasured <= n:
            continue
        out.append(
            Finding(
                kind="unmeasured_hits",
                severity="warning",
                track=close,
                start_s=None,
                end_s=None,
                value=float(unmeasured),
                unit="hits",
                message=f"{unmeasured} of {n} {_names([close])} hits could not be timed against "
                f"{_names(list(consensus.references))} (there the rest of the kit masks them): whether they "
                "were moved is not known; check them by ear",
            )
        )
    return out


def _delay_findings(pairs: list[PairAnalysis], layout: KitLayout, roles: dict[str, Role]) -> list[Finding]:
    """A reference late against most close mics; a close mic heard after an overhead."""
    out: list[Finding] = []
    # a close mic some reference hears before it does (beyond the error, and not that reference's failed
    # reading) has hits that are not (only) its drum, or is late itself: its lags say nothing of a
    # reference's delay
    early, failed_pairs = _early_readings(pairs, set())
    failed = {reference for _, reference in failed_pairs}  # an overhead early for two close mics misread
    for ref in layout.references:
        # an edited close mic's natural lag counts where its unmoved hits measured it, not where geometry
        # assumed it (from the very lags judged here)
        own = [
            p
            for p in pairs
            if p.reference == ref
            and p.natural_lag_ms is not None
            and (p.state != "partially_quantised" or p.natural_lag_basis == "unmoved_hits")
            and p.close not in early
        ]
        far = MAX_PLAUSIBLE_LAG_MS.get(roles[ref], 30.0)
        late = [p for p in own if (p.natural_lag_ms or 0.0) > far]
        if late and len(late) >= 2 / 3 * len(own):
            lag = float(np.median([p.natural_lag_ms for p in late]))
            delay = lag - NOMINAL_LAG_MS.get(roles[ref], 3.0)
            out.append(
                _mic_delay(
                    ref,
                    delay,
                    f"{_names([ref])} hears the kit {lag:.1f} ms after the close mics, more than its distance "
                    f"allows: it is delayed by about {delay:.1f} ms (a latency-compensation or routing fault)",
                )
            )
    out += _stereo_pair_delays(pairs, layout, roles, flagged={f.track for f in out if f.track}, early=early)
    for close in layout.close:
        measured = [
            p
            for p in pairs
            if p.close == close and p.natural_lag_ms is not None and p.natural_lag_basis == "unmoved_hits"
        ]  # measured lags, not assumed ones
        overheads = [p for p in measured if roles[p.reference] == "overhead"]
        # heard after one overhead is enough: a delay smaller than the farther overhead's distance leaves
        # that one hearing the drum after the close mic still (a kick 5.8 ms late: OH L -1.2, OH R +0.3 ms)
        first = [p for p in overheads if (p.natural_lag_ms or 0.0) < -EARLY_TOLERANCE_MS and p.reference not in failed]
        if not first:
            continue
        if _heard_with_its_sibling(close, first, pairs, layout):
            continue
        # a latency fault delays every hit the mic hears: a mic whose overheads hear a good share of its
        # hits after it is not late; what reads late is another drum's bleed, there more often than its own
        heard_after = np.all([np.nan_to_num(p.lags_ms, nan=-np.inf) > EARLY_TOLERANCE_MS for p in overheads], axis=0)
        if heard_after.sum() >= max(3, HEARD_AFTER_SHARE * len(heard_after)):
            continue
        # a late close mic shortens its lag to every reference by the same amount
        implied = [NOMINAL_LAG_MS.get(roles[p.reference], 3.0) - (p.natural_lag_ms or 0.0) for p in measured]
        if max(implied) - min(implied) > DELAY_AGREEMENT_MS:
            continue
        lag = float(np.median([p.natural_lag_ms for p in first]))
        delay = float(np.median(implied))
        out.append(
            _mic_delay(
                close,
                delay,
                f"{_names([close])} is heard {-lag:.1f} ms after {_names([p.reference for p in first])}, "
                "which no kit can do: the close mic is delayed (a latency or plug-in delay fault), by about "
                f"{delay:.1f} ms for typical mic distances",
            )
        )
    return out


HEARD_AFTER_SHARE = 0.25  # hits of a delayed close mic its overheads still hear after it: misreads only
SIBLING_MS = 5.0  # two mics on one drum (top and bottom head, inside and outside a kick) sit within ~30 cm
# of each other, but a drum's far head sounds after the struck one: a real snare's bottom mic starts 0.4-5 ms
# after its top mic (median 1.6; render_real.md), so their lags to one reference differ by up to this


def _heard_with_its_sibling(
    close: str, overheads: list[PairAnalysis], pairs: list[PairAnalysis], layout: KitLayout
) -> bool:
    """Whether a close mic that reads as heard after its overheads hears them within SIBLING_MS of a sibling
    on the same drum that does not: a latency fault delays one mic, and would put it farther behind its
    sibling than the drum's far head sounds after its struck one; within that, the drum's direct sound was
    misplaced (a reading error: a hi-hat over the snare at one overhead) or is its far head's, not delayed.
    Only the far head sounds later: a mic on the struck side behind its underside sibling by more than the
    error is late itself (render_real.py, Snare Top delayed 3.1 ms: -0.6 ms at the overheads, 0.6 ms
    behind Snare Bottom, and no finding)."""
    siblings = layout.siblings_of(close)
    own = {p.reference: p.natural_lag_ms for p in overheads}

    def behind_allowed(sibling: str) -> float:
        return EARLY_TOLERANCE_MS if is_underside(sibling) and not is_underside(close) else SIBLING_MS

    return any(
        q.close in siblings
        and q.reference in own
        and q.natural_lag_ms is not None
        and q.natural_lag_ms >= -EARLY_TOLERANCE_MS
        and -SIBLING_MS <= q.natural_lag_ms - (own[q.reference] or 0.0) <= behind_allowed(q.close)
        for q in pairs
    )


STEREO_PAIR_MS = 3.0  # the two mics of a stereo pair sit at one distance from the kit, within ~1 m: their
# lags differ by less (0.0-0.8 ms, median over close mics, on the eval kits); a routing or plug-in delay
# on one of them is 1.3-21 ms (64-1024 samples), and moves every close mic's difference the same way
# Every drum of a kit reaches one side of a pair later by at most this much on the eval kits (real: the
# floor tom and tom 1, +-1.05 ms; simulated: 0.8 ms, where two drums or fewer reach one side first)
ONE_SIDE_MS = 1.0
_SIDE_WORDS = {"l", "r", "left", "right", "lt", "rt"}


def _stereo_pairs(references: tuple[str, ...], roles: dict[str, Role]) -> list[tuple[str, str]]:
    """Reference mics named as the two sides of one pair ("Room L" / "Room R", "OH Left" / "OH Right")."""
    by_key: dict[tuple[str, str], list[str]] = {}
    for name in references:
        words = normalise_name(name).split()
        if any(w in _SIDE_WORDS for w in words):
            key = " ".join(w for w in words if w not in _SIDE_WORDS)
            by_key.setdefault((roles[name], key), []).append(name)
    return [(a, b) for names in by_key.values() if len(names) == 2 for a, b in [sorted(names)]]


def _stereo_pair_delays(
    pairs: list[PairAnalysis],
    layout: KitLayout,
    roles: dict[str, Role],
    *,
    flagged: set[str],
    early: set[str],
) -> list[Finding]:
    """One mic of a stereo pair heard later than the other by more than a pair's placement allows (the
    median over close mics), from most close mics: that mic is delayed. The difference of two lags from
    one close mic does not depend on where its hits were played, so edited mics count too; close mics in
    `early` (some reference hears them first) do not."""
    out = []
    # a lag below 0 is no arrival (a reading the reference's other sources masked), and one read from 0 (the
    # reference heard the drum first, within the error, or an assumed lag said it did) no measured one: they
    # say nothing of a delay
    lag = {
        (p.close, p.reference): p.natural_lag_ms
        for p in pairs
        if p.natural_lag_ms is not None and p.natural_lag_ms > 0.0 and p.close not in early
    }
    for a, b in _stereo_pairs(layout.references, roles):
        if a in flagged or b in flagged:
            continue
        difference_of = {c: lag[(c, a)] - lag[(c, b)] for c in layout.close if (c, a) in lag and (c, b) in lag}
        # two mics on one drum hear it from one place: their differences differ by less than a pair's own
        # placement makes of one (the real snare's top and bottom mics: 1.2-1.7 ms), or one of them read a
        # reflection (a fast song in a reverberant room: Snare Top 1.6 ms, Snare Bottom 6.2) and neither says
        # where the drum reaches the pair. A sibling that found no arrival at one side of the pair (a lag
        # of 0 or none), or that a reference hears first, confirms nothing either: the drum's direct sound
        # there is unplaced, and the other mic's reading of it alone made false delays of 7.0 and 7.7 ms
        # (render.py ForzeeStereo, rt60 0.4 s, partial_exclude and partial_cut; no mic was delayed)
        measured = [
            c
            for c, d in difference_of.items()
            if all(s in difference_of and abs(d - difference_of[s]) <= STEREO_PAIR_MS for s in layout.siblings_of(c))
        ]
        differences = [difference_of[c] for c in measured]
        if len(differences) < 2:
            continue
        # a drum nearer one side makes its own difference (up to a few ms on a spaced pair), the kit's
        # drums on both sides cancel in the median; a delay moves every one the same way
        difference = float(np.median(differences))
        same_way = float(np.mean(np.sign(differences) == np.sign(difference))) >= 2 / 3
        # a pair brackets the kit: drums on its two sides reach it in opposite orders. Three drums or more
        # that all reach one side ONE_SIDE_MS or more later say that side is delayed, even where the delay
        # is under STEREO_PAIR_MS (a plug-in's 128 samples, 2.7 ms)
        seen: set[str] = set()
        drums = []  # one difference per drum: a drum's second mic (Snare Bottom) is not a second drum
        for close, d in zip(measured, differences, strict=True):
            if not seen & set(layout.siblings_of(close)):
                drums.append(d)
            seen.add(close)
        one_sided = len(drums) >= 3 and (min(drums) >= ONE_SIDE_MS or max(drums) <= -ONE_SIDE_MS)
        if not one_sided and (abs(difference) <= STEREO_PAIR_MS or not same_way):
            continue
        late, other = (a, b) if difference > 0 else (b, a)
        out.append(
            _mic_delay(
                late,
                abs(difference),
                f"{_names([late])} hears the kit {abs(difference):.1f} ms after {_names([other])}, its other side; "
                "the two mics of a pair sit at one distance, so it is delayed (a latency-compensation or routing "
                "fault)",
            )
        )
    return out


def _mic_delay(track: str, delay_ms: float, why: str) -> Finding:
    """A mic heard `delay_ms` late as a whole: `why`, then how far to slide it."""
    return Finding(
        kind="mic_delay",
        severity="error",
        track=track,
        value=round(delay_ms, 2),
        unit="ms",
        message=f"{why}; slide it {delay_ms:.1f} ms earlier",
    )
