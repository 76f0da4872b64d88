"""A track's role from its audio, for names that say nothing ("Audio 1_03.wav").

Conventions
- Features are measured on the first minute of the track (mono): how much of it is pitched and how
  low, where its energy sits (five bands), how noisy and how bright it is, how often it is struck, how
  peaky, and how long its hits ring after their attack (a room mic's reverberation). Units in
  `FEATURES`.
- The model is a multinomial logistic regression over the standardised features, stored as numbers in
  `sessionfix/models/roles-v1.npz` (numpy arrays only, loaded without pickle; `models/` of the source
  tree links to it) and checked against the sha256 in `registry.json` beside it: a file that does not
  match is refused.
- A guess is used only at or above `MIN_CONFIDENCE`; below it the track keeps role `other` and the
  guess is reported as such.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SessionError

MODEL_NAME = "roles-v1.npz"
MIN_CONFIDENCE = 0.8
FEATURE_SECONDS = 60.0
MIN_SECONDS = 1.0  # a shorter stem gets no features (and no role from its audio)
FEATURES = (
    "voiced_share",  # share of 10 ms frames with a pitch (YIN)
    "f0_octaves_above_55hz",  # median pitch of the voiced frames, octaves above A1 (0 when unpitched)
    "band_20_120_db",  # energy in each band against the whole, dB
    "band_120_400_db",
    "band_400_1500_db",
    "band_1500_5000_db",
    "band_5000_16000_db",
    "flatness_log10",  # mean spectral flatness (noise 0, a tone -inf), log10
    "centroid_log2_khz",  # mean spectral centroid, octaves above 1 kHz
    "centroid_spread_octaves",  # its standard deviation over time
    "onsets_per_second_log1p",
    "crest_db",  # peak against RMS
    "ring_db",  # energy 30-150 ms after each onset against the first 30 ms (reverberation, decay)
    "sustain_share",  # share of 50 ms frames within 20 dB of the loudest
    "kit_correlation",  # session context: how well its attacks line up with the other tracks' (0-1)
    "arrival_ms",  # ...and how long after the session's earliest track it hears them, ms
    "arrival_share",  # ...as a share of the session's latest arrival (a room mic's is 1)
)
CONTEXT_LAG_MS = 40.0  # the farthest a kit mic hears a hit after another


class ModelError(SessionError):
    """The role model is missing or is not the file its registry entry describes."""


def models_folder() -> Path:
    """Where the model ships: inside the package (so any install has it); the source tree's `models/`
    links to these files beside their training script and card."""
    return Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class RoleModel:
    classes: tuple[str, ...]
    mean: np.ndarray  # per feature
    scale: np.ndarray  # per feature
    weights: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities of each row of `features` (n, len(FEATURES))."""
        z = ((np.atleast_2d(features) - self.mean) / self.scale) @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


def load_model(folder: Path | None = None) -> RoleModel:
    """The role model, after checking its sha256 against models/registry.json."""
    folder = folder or models_folder()
    path, registry = folder / MODEL_NAME, folder / "registry.json"
    try:
        expected = json.loads(registry.read_text(encoding="utf-8"))[MODEL_NAME]["sha256"]
        data = path.read_bytes()
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(
            f"the role model {path} or its registry entry is missing ({exc}); reinstall sessionfix"
        ) from exc
    if hashlib.sha256(data).hexdigest() != expected:
        raise ModelError(f"{path} does not match its sha256 in {registry}: refused (retrain it with `make models`)")
    with np.load(path, allow_pickle=False) as arrays:
        if list(arrays["features"]) != list(FEATURES):
            raise ModelError(f"{path} was trained on other features; retrain it with `make models`")
        return RoleModel(
            classes=tuple(str(c) for c in arrays["classes"]),
            mean=arrays["mean"],
            scale=arrays["scale"],
            weights=arrays["weights"],
            bias=arrays["bias"],
        )


def track_features(signal: np.ndarray, sr: int, context: tuple[float, ...] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """FEATURES of a mono signal (its first FEATURE_SECONDS are used), with its session context
    (`session_context`)."""
    return np.concatenate((sound_features(signal, sr), context))


def running_energy(signal: np.ndarray, sr: int) -> np.ndarray:
    """The running sum of squares over the first FEATURE_SECONDS (float64, a 0 first): what `level_db`
    and `sound_features` both sum, made once for a stem."""
    x = np.asarray(signal)[: int(FEATURE_SECONDS * sr)]
    return np.concatenate(([0.0], np.cumsum(np.square(x, dtype=np.float64))))


def sound_features(signal: np.ndarray, sr: int, energy: np.ndarray | None = None) -> np.ndarray:
    """FEATURES of a mono signal but its session context (the first FEATURE_SECONDS are used); `energy`:
    its `running_energy`, when already made."""
    import librosa

    from .parts import HOP, PartsParams, yin

    x = np.asarray(signal, np.float32)[: int(FEATURE_SECONDS * sr)]
    if len(x) < MIN_SECONDS * sr or not np.any(x):
        return np.zeros(len(FEATURES) - 3)
    # a role needs the share of pitched frames and the typical pitch, not a contour: every 20 ms is ample
    f0, _ = yin(x, sr, threshold=PartsParams().yin_threshold, hop=2 * HOP)
    voiced = np.isfinite(f0)
    voiced_share = float(voiced.mean()) if f0.size else 0.0
    f0_octaves = float(np.log2(np.median(f0[voiced]) / 55.0)) if voiced.sum() >= 10 else 0.0
    hop = 512 if sr <= 48000 else 1024
    # the power spectrum once, each measure taken from it in turn and the next made in its place (each
    # librosa feature call squared, rooted or logged its own copy of the spectrum: the features cost twice
    # as much); at most two spectra are held at once (a minute: 23 MB each, the STFT's own 46 MB)
    spectrum = librosa.stft(x, n_fft=2048, hop_length=hop)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    del spectrum
    freqs = librosa.fft_frequencies(sr=sr, n_fft=2048)
    per_bin = power.sum(axis=1, dtype=np.float64)
    total = float(per_bin.sum()) + 1e-20
    bands = [
        10 * np.log10(float(per_bin[(freqs >= lo) & (freqs < hi)].sum()) / total + 1e-12)
        for lo, hi in ((20, 120), (120, 400), (400, 1500), (1500, 5000), (5000, 16000))
    ]
    frame_power = power.sum(axis=0)
    loud = frame_power > 1e-6 * frame_power.max()
    # the spectral centroid (librosa's definition: the magnitude-weighted mean frequency of each frame)
    magnitude = np.sqrt(power)
    centroid = (freqs.astype(np.float32) @ magnitude) / np.maximum(magnitude.sum(axis=0), np.finfo(np.float32).tiny)
    del magnitude
    octaves = np.log2(np.maximum(centroid[loud], 20.0) / 1000.0) if loud.any() else np.zeros(1)
    # librosa's spectral flatness and power_to_db (amin 1e-10, ref 1, top_db 80), from one natural log of
    # the power (float32 log10 takes 48 ms for a minute's spectrum, log 12 ms)
    floored = np.maximum(power, np.float32(1e-10), out=power)
    arithmetic = np.mean(floored, axis=0)
    log_power = np.log(floored, out=floored)
    flatness = float(np.log10(np.mean(np.exp(np.mean(log_power, axis=0)) / arithmetic) + 1e-12))
    decibels = np.multiply(log_power, np.float32(10 / np.log(10)), out=log_power)
    np.maximum(decibels, decibels.max() - 80.0, out=decibels)
    envelope = librosa.onset.onset_strength(S=decibels, sr=sr, hop_length=hop)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=hop, units="samples")
    rate = float(np.log1p(len(onsets) / (len(x) / sr)))
    energy = running_energy(x, sr) if energy is None else energy
    rms = float(np.sqrt(energy[-1] / len(x))) + 1e-12
    crest = float(20 * np.log10(np.max(np.abs(x)) / rms))

    def span(lo_s: float, hi_s: float) -> np.ndarray:
        a = np.clip(onsets + int(lo_s * sr), 0, len(x))
        b = np.clip(onsets + int(hi_s * sr), 0, len(x))
        return energy[b] - energy[a]

    ring = (
        float(np.median(10 * np.log10((span(0.03, 0.15) + 1e-12) / (span(0.0, 0.03) + 1e-12)))) if len(onsets) else 0.0
    )
    frame = int(0.05 * sr)
    frames = (energy[frame::frame] - energy[:-frame:frame][: len(energy[frame::frame])]) / frame
    level = 10 * np.log10(frames + 1e-12)
    sustain = float(np.mean(level >= level.max() - 20)) if level.size else 0.0
    return np.array(
        [
            voiced_share,
            f0_octaves,
            *bands,
            flatness,
            float(octaves.mean()),
            float(octaves.std()),
            rate,
            crest,
            ring,
            sustain,
        ]
    )


def level_db(signal: np.ndarray, sr: int, energy: np.ndarray | None = None) -> np.ndarray:
    """Level (dB, 3 ms RMS) every 1 ms over the first FEATURE_SECONDS; `energy`: the signal's
    `running_energy`, when already made."""
    energy = running_energy(signal, sr) if energy is None else energy
    hop, window = max(1, sr // 1000), max(1, 3 * sr // 1000)
    ends = np.arange(window, len(energy), hop)
    if not ends.size:
        return np.zeros(1)
    return 10 * np.log10((energy[ends] - energy[ends - window]) / window + 1e-12)


def attack_envelope(signal: np.ndarray, sr: int) -> np.ndarray:
    """Rises of the level (dB per ms, `level_db`), zero-mean, unit norm: what lines up between two mics
    that hear the same hits."""
    return envelope_of_level(level_db(signal, sr))


def envelope_of_level(level: np.ndarray) -> np.ndarray:
    """`attack_envelope` of a `level_db`."""
    rise = np.maximum(np.diff(level, prepend=level[:1]), 0.0)
    rise -= rise.mean()
    return rise / (np.linalg.norm(rise) + 1e-12)


def session_context(envelopes: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float]]:
    """Per track, (kit_correlation, arrival_ms, arrival_share): its best attack correlation with any other track within
    +-CONTEXT_LAG_MS, and when it hears the session's hits: the arrival times that best explain the lags
    of every pair that correlates (> 0.3), from the earliest such track. A close mic hears its hits first, an overhead
    a few ms later, a room mic later still; a pitched part correlates with none."""
    names = sorted(envelopes)
    lag = int(CONTEXT_LAG_MS)
    size = 1 << int(np.ceil(np.log2(max(len(e) for e in envelopes.values()) + lag + 1))) if names else 1
    spectra = {n: np.fft.rfft(envelopes[n], size) for n in names}
    best: dict[str, float] = {n: 0.0 for n in names}
    rows, lagged, weights = [], [], []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            b = names[j]
            c = np.fft.irfft(spectra[a] * np.conj(spectra[b]), size)
            window = np.concatenate((c[-lag:], c[: lag + 1]))  # lags -lag..lag: a heard this long after b
            k = int(np.argmax(window))
            peak = float(window[k])
            best[a], best[b] = max(best[a], peak), max(best[b], peak)
            if peak > 0.3:
                row = np.zeros(len(names))
                row[i], row[j] = 1.0, -1.0
                rows.append(row)
                lagged.append(float(k - lag))
                weights.append(peak)
    linked = sorted({names[int(i)] for row in rows for i in np.flatnonzero(row)})
    arrival = {n: 0.0 for n in names}
    if rows:
        # arrival times that best explain every pair's lag (least squares, weighted by the correlation)
        w = np.sqrt(np.array(weights))[:, None]
        system = np.vstack((np.array(rows) * w, np.ones((1, len(names)))))
        target = np.concatenate((np.array(lagged) * w[:, 0], [0.0]))
        times = np.linalg.lstsq(system, target, rcond=None)[0]
        earliest = min(times[names.index(n)] for n in linked)
        arrival = {n: float(times[names.index(n)] - earliest) if n in linked else 0.0 for n in names}
    latest = max(arrival.values(), default=0.0)
    return {n: (best[n], arrival[n], arrival[n] / latest if latest > 0 else 0.0) for n in names}


FAR_MICS = ("overhead", "room")
CLOSE_MICS = ("kick", "snare", "tom", "hihat")
ROOM_AFTER_MS = 2.5  # a room mic hears the kit at least this much after the overheads
LEAD_MS = 1.0  # a close mic (< 10 cm from its drum) hears it at least this long before a far mic (> 50 cm)
LEVEL_RANGE_DB = 30.0  # levels below the loudest (99.9th percentile) minus this are floor: their rises are noise
ATTACK_RISE_DB = 6.0  # a hit: the level rises this much within 3 ms...
LOUD_HIT_DB = 10.0  # ...and a loud one peaks within this of the track's loudest hit
MIN_HITS = 8  # a track with fewer hits in its first minute is not judged
MIN_CORRELATION = 0.2  # a far mic that hears the close mic's loud hits (rise correlation)
LEAD_WINDOW_MS = 20  # each loud hit's attack is compared over +-this
MAX_LEAD_MS = 15  # lags searched either side, ms: an overhead hears a close mic's drum 2-5 ms later, a room 5-15


def guess_roles(
    model: RoleModel,
    features: dict[str, np.ndarray],
    arrival_ms: dict[str, float],
    levels: dict[str, np.ndarray] | None = None,
    named_far: tuple[str, ...] = (),
) -> dict[str, tuple[str, float]]:
    """Per stem, the model's role and its probability. Then the physics the features only hint at:
    - among the stems read as far mics (overhead or room), when their arrival times split with a gap of
      ROOM_AFTER_MS or more, the later ones are the room mics and the earlier ones the overheads, each
      with the model's probability of a far mic (either role): the model tells a far mic from a close
      one, the physics tells an overhead from a room;
    - a stem read as a close mic (kick, snare, tom, hi-hat) whose loud hits the far mics (read so, or
      `named_far`) hear LEAD_MS or more later (`leads_far_mics`, on `levels`: `level_db` per stem) is a
      close mic: its probability of being a far mic is dropped and the rest renormalised. The model
      tells which drum, the arrival that the mic is on one."""
    out: dict[str, tuple[str, float]] = {}
    probabilities = {name: model.probabilities(row)[0] for name, row in features.items()}
    for name, p in probabilities.items():
        best = int(np.argmax(p))
        out[name] = (model.classes[best], float(p[best]))
    far = [name for name, (role, _) in out.items() if role in FAR_MICS]
    if len(far) >= 2:
        ordered = sorted(far, key=lambda n: arrival_ms[n])
        gaps = np.diff([arrival_ms[n] for n in ordered])
        k = int(np.argmax(gaps))
        if gaps[k] >= ROOM_AFTER_MS:
            far_mic = [model.classes.index(r) for r in FAR_MICS]
            for i, name in enumerate(ordered):
                # the model says it is a far mic (its probability of either), the arrival which one
                role = "overhead" if i <= k else "room"
                out[name] = (role, float(probabilities[name][far_mic].sum()))
    if levels:
        far_levels = {n: levels[n] for n in (*far, *named_far) if n in levels}
        not_far = [i for i, c in enumerate(model.classes) if c not in FAR_MICS]
        for name, (role, _) in list(out.items()):
            if role in CLOSE_MICS and name in levels and leads_far_mics(levels[name], far_levels):
                out[name] = (
                    role,
                    float(probabilities[name][model.classes.index(role)] / probabilities[name][not_far].sum()),
                )
    return {name: (role, round(p, 2)) for name, (role, p) in out.items()}


def loud_attacks(level: np.ndarray) -> np.ndarray:
    """Frames (ms) where the track's loud hits start: the level (`level_db`) rises ATTACK_RISE_DB within
    3 ms (from the start of that rise; one per 30 ms) and peaks within LOUD_HIT_DB of the loudest hit.
    Empty when it has fewer than MIN_HITS hits in all."""
    if len(level) < MIN_HITS * 30:  # too short to hold MIN_HITS hits 30 ms apart
        return np.zeros(0, int)
    rise3 = level - np.concatenate((np.full(3, level[0]), level[:-3]))
    peaks = np.flatnonzero((rise3 >= ATTACK_RISE_DB) & (rise3 >= np.roll(rise3, 1)) & (rise3 >= np.roll(rise3, -1)))
    starts: list[int] = []
    for frame in peaks:
        if starts and frame - starts[-1] < 30:
            continue
        while frame > 3 and rise3[frame - 1] >= ATTACK_RISE_DB:
            frame -= 1
        starts.append(int(frame))
    if len(starts) < MIN_HITS:
        return np.zeros(0, int)
    onsets = np.array(starts)
    peak = np.array([level[f : f + 15].max() for f in onsets])
    return onsets[peak >= peak.max() - LOUD_HIT_DB]


def _vertex(c: np.ndarray, k: int) -> float:
    """Offset (-0.5..0.5 steps) of the parabola through c[k-1], c[k], c[k+1] from k."""
    if k == 0 or k == len(c) - 1:
        return 0.0
    curve = c[k - 1] - 2 * c[k] + c[k + 1]
    return float(np.clip(0.5 * (c[k - 1] - c[k + 1]) / curve, -0.5, 0.5)) if curve < 0 else 0.0


def leads_far_mics(level: np.ndarray, far_levels: dict[str, np.ndarray]) -> bool:
    """Whether a mic hears its own loud hits first: on its loud attacks (`loud_attacks`), the far
    mics that hear them (rise correlation >= MIN_CORRELATION over +-LEAD_WINDOW_MS of each), two or
    more, hear them LEAD_MS or more later: their median, and the one that correlates best (a far mic's
    best is its pair partner, at its own distance). Lags in ms, the peak interpolated between 1 ms
    steps. Levels are `level_db`, floored at LEVEL_RANGE_DB under each track's loudest so that rises in
    the noise count for nothing."""

    def floored(lv: np.ndarray) -> np.ndarray:
        return np.maximum(lv, np.percentile(lv, 99.9) - LEVEL_RANGE_DB)

    def rises(lv: np.ndarray) -> np.ndarray:
        return np.maximum(np.diff(lv, prepend=lv[:1]), 0.0)

    attacks = loud_attacks(floored(level))
    if not len(attacks):
        return False
    mask = np.zeros(len(level))
    for frame in attacks:
        mask[max(0, frame - LEAD_WINDOW_MS) : frame + LEAD_WINDOW_MS] = 1.0
    own = rises(floored(level)) * mask
    lags, correlations = [], []
    for far in far_levels.values():
        other = rises(floored(far))
        n = min(len(own), len(other))
        a, b = own[:n], other[:n]
        norm = np.linalg.norm(a) * np.linalg.norm(b * mask[:n]) + 1e-12
        shifts = range(-MAX_LEAD_MS, MAX_LEAD_MS + 1)  # b heard this many ms after a
        c = np.array([np.dot(a[max(0, -k) : n - max(0, k)], b[max(0, k) : n - max(0, -k)]) for k in shifts]) / norm
        k = int(np.argmax(c))
        if c[k] >= MIN_CORRELATION:
            lags.append(k - MAX_LEAD_MS + _vertex(c, k))
            correlations.append(float(c[k]))
    # the far mic that hears them best (an overhead's is its pair, at the same distance) and most far mics
    return len(lags) >= 2 and lags[int(np.argmax(correlations))] >= LEAD_MS and float(np.median(lags)) >= LEAD_MS


def fit(features: np.ndarray, labels: list[str], *, l2: float = 1e-3, steps: int = 3000) -> RoleModel:
    """Multinomial logistic regression by gradient descent (deterministic: zero start, fixed steps)."""
    classes = tuple(sorted(set(labels)))
    y = np.zeros((len(labels), len(classes)))
    y[np.arange(len(labels)), [classes.index(c) for c in labels]] = 1.0
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-9
    x = (features - mean) / scale
    w, b = np.zeros((x.shape[1], len(classes))), np.zeros(len(classes))
    model = RoleModel(classes, mean, scale, w, b)
    for _ in range(steps):
        p = model.probabilities(features)
        grad = p - y
        w = w - 0.5 * (x.T @ grad / len(x) + l2 * w)
        b = b - 0.5 * grad.mean(axis=0)
        model = RoleModel(classes, mean, scale, w, b)
    return model


def save_model(model: RoleModel, folder: Path) -> str:
    """Write the model's arrays and its registry entry; returns the sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_NAME
    with path.open("wb") as fh:
        np.savez(
            fh,
            classes=np.array(model.classes),
            features=np.array(FEATURES),
            mean=model.mean,
            scale=model.scale,
            weights=model.weights,
            bias=model.bias,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "registry.json").write_text(
        json.dumps({MODEL_NAME: {"sha256": digest, "version": 1}}, indent=1) + "\n", encoding="utf-8"
    )
    return digest
