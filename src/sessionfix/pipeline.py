"""The scan: the stages called in order, every intermediate kept in one `Scan` object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Config, load_config
from .effort import Effort, estimate_effort
from .errors import ConfigError
from .findings import SEVERITY_RANK, Finding
from .kit import KitAnalysis, KitParams, analyse_kit, kit_tempo
from .lags import measure_kit
from .onsets import detect_kit_hits
from .parts import PartsAnalysis, PartsParams, analyse_part, combine_parts
from .progress import Progress, quiet
from .qc import QcResult, check_session
from .roles import PITCHED_ROLES, KitLayout, Role, assign_roles, kit_layout
from .session import Session, load_session, read


@dataclass(frozen=True)
class Scan:
    """Everything one scan learnt; the reports are views of it."""

    session: Session
    config: Config
    roles: dict[str, Role]
    layout: KitLayout
    qc: QcResult
    kit: KitAnalysis
    parts: PartsAnalysis
    findings: tuple[Finding, ...]  # every stage's, sorted by track then time
    effort: Effort


def _sort_key(f: Finding) -> tuple:
    return (f.track or "", f.start_s if f.start_s is not None else -1.0, -SEVERITY_RANK[f.severity], f.kind)


def scan(path: Path | str, *, progress: Progress = quiet) -> Scan:
    """Load a session folder and run every analysis stage over it.

    progress : told (stage, steps done, steps in all) as the long stages go.
    """
    folder = Path(path)
    config = load_config(folder) if folder.is_dir() else Config()
    session = load_session(folder, exclude=config.exclude)
    for name in config.roles:
        if name not in {t.name for t in session.tracks}:
            raise ConfigError(
                f"sessionfix.toml gives a role to {name!r}, which is not a readable track "
                "of the session; fix the file name"
            )
    roles = assign_roles([t.name for t in session.tracks], overrides=config.roles)
    layout = kit_layout(roles, pairs=config.pairs)
    qc = check_session(session, layout=layout, params=config.qc, progress=progress)
    usable = usable_tracks(session, qc)
    kit = _analyse_kit(session, layout.only(usable), roles, KitParams(), progress)
    parts_params = PartsParams()
    pitched = [t for t in session.tracks if t.name in usable and roles[t.name] in PITCHED_ROLES]
    part_list = []
    for i, t in enumerate(pitched):  # one pitched track in memory at a time
        progress("Tracking pitch", i, len(pitched))
        part_list.append(
            analyse_part(read(t), sr=t.sr, track=t.name, a4_hz=440.0, tempo=kit.tempo, params=parts_params)
        )
    parts = combine_parts(part_list, tempo=kit.tempo, params=parts_params)
    findings = tuple(sorted(session.findings + qc.findings + kit.findings + parts.findings, key=_sort_key))
    effort = estimate_effort(findings, units={"partial_quantisation": kit.moved_hits})
    return Scan(
        session=session,
        config=config,
        roles=roles,
        layout=layout,
        qc=qc,
        kit=kit,
        parts=parts,
        findings=findings,
        effort=effort,
    )


def _analyse_kit(
    session: Session, layout: KitLayout, roles: dict[str, Role], params: KitParams, progress: Progress
) -> KitAnalysis:
    """Hits on the close mics, per-hit lags against every reference, the tempo grid, then the verdicts."""
    sr = session.sr or 0
    hits = detect_kit_hits(session, layout=layout, roles=roles, params=params.onsets, progress=progress)
    lags, agreed = measure_kit(session, layout=layout, roles=roles, hits=hits, params=params.lags, progress=progress)
    tempo = kit_tempo(hits, roles, sr=sr, end_s=session.duration_s)
    return analyse_kit(
        layout=layout, roles=roles, hits=hits, lags=lags, agreed=agreed, tempo=tempo, sr=sr, params=params
    )


def usable_tracks(session: Session, qc: QcResult) -> set[str]:
    """Tracks the analysis stages may read: decoded, at the session rate, not silent."""
    silent = {f.track for f in qc.findings if f.kind in ("silent", "unreadable")}
    return {t.name for t in session.tracks if t.sr == session.sr and t.name in qc.stats and t.name not in silent}
