"""Per-session settings: defaults < `sessionfix.toml` in the session folder < CLI flags.

Each stage owns a frozen params dataclass holding its defaults (defined once, beside the code that
uses them); this module only reads the file, validates it (pydantic: types, ranges, no unknown keys)
and overrides those defaults. The file lives in a client's folder: it is untrusted input, and a bad
one is one line naming the key.

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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .errors import ConfigError
from .qc import QC_RANGES, QcParams
from .roles import Role
from .session import CONFIG_NAME, printable

MAX_CONFIG_BYTES = 1 << 20  # a settings file is a few lines; a bigger one is not a settings file


@dataclass(frozen=True)
class Config:
    """Everything a scan can be told about one session."""

    exclude: frozenset[str] = frozenset()
    roles: dict[str, Role] = field(default_factory=dict)
    pairs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    qc: QcParams = QcParams()


_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _qc_model() -> type[BaseModel]:
    """[qc]: every field of QcParams optional, of its default's type, within its QC_RANGES."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(QcParams):
        low, high = QC_RANGES[f.name]
        kind = int if isinstance(f.default, int) else float
        # a whole number is a fine value for a float setting (TOML writes 1.0 as 1)
        fields[f.name] = ((int | float if kind is float else int) | None, Field(default=None, ge=low, le=high))
    return create_model("QcSection", __config__=_STRICT, **fields)


_QcSection = _qc_model()


class _ConfigFile(BaseModel):
    model_config = _STRICT
    exclude: list[str] = Field(default_factory=list, max_length=10_000)
    roles: dict[str, Role] = Field(default_factory=dict)
    pairs: dict[str, list[str] | str] = Field(default_factory=dict)
    qc: _QcSection = Field(default_factory=_QcSection)  # type: ignore[valid-type]


def _first_problem(exc: ValidationError) -> str:
    """One line naming the key, the value and what it should be."""
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    value = error.get("input")
    shown = printable(repr(value))[:60]
    message = error["msg"].replace("Input should be", "should be").replace("Value error, ", "")
    return f"{location} = {shown}: {message}"


def load_config(session_dir: Path) -> Config:
    """Read `sessionfix.toml` from the session folder; the defaults when there is none."""
    path = session_dir / CONFIG_NAME
    if not path.is_file():
        return Config()
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is {path.stat().st_size} bytes, not a settings file; remove it or fix it")
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); fix it or remove it") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path} is nested too deeply to be a settings file; fix it or remove it") from exc
    try:
        parsed = _ConfigFile.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_problem(exc)}; fix it or remove it") from exc
    qc: BaseModel = parsed.qc
    overrides = {k: v for k, v in qc.model_dump().items() if v is not None}
    return Config(
        exclude=frozenset(parsed.exclude),
        roles=dict(parsed.roles),
        pairs={close: (refs,) if isinstance(refs, str) else tuple(refs) for close, refs in parsed.pairs.items()},
        qc=dataclasses.replace(QcParams(), **overrides),
    )
