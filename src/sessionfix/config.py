"""Per-session settings: defaults < `sessionfix.toml` in the session folder < CLI flags.

Each stage owns a frozen params dataclass holding its defaults (defined once, beside the code that
uses them); this module only reads the file, validates it and overrides those defaults.

    # sessionfix.toml
    exclude = ["Click.wav"]                  # files to leave out of the scan
    [roles]                                  # file name -> role, when the name says nothing
    "Track 07.wav" = "snare"
    [pairs]                                  # close mic -> the reference mics that hear it
    "Snare Top.wav" = ["OH L.wav", "OH R.wav"]
    [qc]                                     # any field of sessionfix.qc.QcParams
    clip_run_samples = 4
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .qc import QcParams
from .roles import ROLES, Role
from .session import CONFIG_NAME


@dataclass(frozen=True)
class Config:
    """Everything a scan can be told about one session."""

    exclude: frozenset[str] = frozenset()
    roles: dict[str, Role] = field(default_factory=dict)
    pairs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    qc: QcParams = QcParams()


def _override(params: Any, table: dict[str, Any], section: str) -> Any:
    """`params` with the fields named in `table` replaced, each type-checked against its default."""
    known = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{CONFIG_NAME}: [{section}] has no setting {key!r}; known: {', '.join(known)}")
        default = known[key]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{CONFIG_NAME}: [{section}] {key} must be a number, not {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and not isinstance(value, int):
            raise ConfigError(f"{CONFIG_NAME}: [{section}] {key} must be a whole number, not {value!r}")
    return dataclasses.replace(params, **table)


def load_config(session_dir: Path) -> Config:
    """Read `sessionfix.toml` from the session folder; the defaults when there is none."""
    path = session_dir / CONFIG_NAME
    if not path.is_file():
        return Config()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); fix it or remove it") from exc

    unknown = set(doc) - {"exclude", "roles", "pairs", "qc"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; known: exclude, roles, pairs, qc")
    exclude = doc.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise ConfigError(f"{path}: exclude must be a list of file names")
    roles = doc.get("roles", {})
    for name, role in roles.items():
        if role not in ROLES:
            raise ConfigError(f"{path}: role {role!r} for {name!r} is not one of {', '.join(ROLES)}")
    pairs = {}
    for close, refs in doc.get("pairs", {}).items():
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise ConfigError(f"{path}: [pairs] {close!r} must be a list of reference file names")
        pairs[close] = tuple(refs)
    return Config(
        exclude=frozenset(exclude), roles=dict(roles), pairs=pairs, qc=_override(QcParams(), doc.get("qc", {}), "qc")
    )
