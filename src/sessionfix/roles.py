"""Track roles from the names engineers really use, and the kit layout that follows from them.

Names are normalised first (extension, leading track numbers, case, separators, camelCase and
letter/digit joins: "01_KikIn.wav" -> "kik in"), then matched against ordered word rules: the first
rule that matches decides. Overrides from sessionfix.toml win over every rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal[
    "kick", "snare", "tom", "hihat", "cymbal", "overhead", "room", "kit", "bass", "guitar", "keys", "vocal", "other"
]
ROLES: tuple[str, ...] = get_args(Role)
CLOSE_ROLES = ("kick", "snare", "tom", "hihat", "cymbal")  # mics on one drum or cymbal
REFERENCE_ROLES = ("overhead", "room")  # mics that hear the whole kit
KIT_ROLES = CLOSE_ROLES + REFERENCE_ROLES
PITCHED_ROLES = ("bass", "guitar", "keys", "vocal")

_AUDIO_EXT = re.compile(r"\.(wav|wave|bwf|rf64|aif|aiff|aifc|flac)$", re.I)

# Ordered (role, pattern) rules on the normalised name; word boundaries are spaces. The first match
# decides, so the order carries meaning: kit rules first ("Bass Drum" is a kick, "Snare Top" is not an
# overhead); then the unambiguous instrument words; then the weak words that only mean something when
# nothing else matched ("Gtr Dbl" is a guitar, "Dbl" alone a vocal double; "Lead Gtr" a guitar,
# "Lead" alone a vocal).
_RULES: tuple[tuple[Role, str], ...] = (
    (
        "kick",
        r"kick|kicks|kik|kck|kic|bd|bassdrum|bass drum|kd|sub ?kick|kick ?sub|k in|k out|kin|kout"
        r"|beater",
    ),
    ("snare", r"snare|snares|snr|sn|sd|sna|snar|snt|snb|rim|rimshot"),
    ("tom", r"toms?|tm|rack|racktom|floor|floortom|ft|ftom|rt|hi ?tom|mid ?tom|lo ?tom|low ?tom|t ?\d+"),
    ("hihat", r"hh|hihat|hi ?hat|hats?|hht"),
    ("cymbal", r"ride|crash|china|splash|cym|cymbal|cyms|bell"),
    ("overhead", r"oh|ohs|ovh|ovhd|ovhds|ovr|over|overs|overhead|overheads|o ?heads?|ohl|ohr|cymbals"),
    ("room", r"room|rooms|rm|rms|amb|ambi|ambience|ambient|far|trash|crush|crushed|hall|roomy"),
    # one mic or a bus for the whole kit: after the kit mic rules ("Drum Room" is a room, "Drum OH" an overhead)
    ("kit", r"drums?|drum ?kit|kit|kits|drum ?bus|drumbus|drum ?mix|drum ?buss|drum ?stem|drum ?mono|drum ?stereo"),
    ("bass", r"bass|bassline|bas|bss|bs|bgtr|b ?di|sub|synbass|upright|contrabass|808|ebass"),
    (
        "guitar",
        r"gtr|gtrs|guit|guitar|guitars|gt|egtr|agtr|eg|ag|acgtr|acoustic|elec|electric|strat|tele"
        r"|telecaster|les ?paul|dobro|banjo|mandolin|mando|uke|ukulele|nylon|12 ?string|pedal ?steel"
        r"|jazzmaster",
    ),
    (
        "keys",
        r"keys|key|kbd|kbds|keyboard|keyboards|piano|pno|pn|pia|grand|rhodes|rhds|wurli|wurlitzer|ep"
        r"|e ?piano|epiano|organ|org|hammond|b ?3|leslie|synth|synths|syn|clav|clavinet|mellotron"
        r"|tron|moog|juno|prophet|celeste|celesta|harpsi|harpsichord|accordion",
    ),
    (
        "vocal",
        r"vox|vocal|vocals|voc|vo|vx|bv|bvs|bgv|bgvs|bkg|bgd|backing|backings|harmony|harmonies|harm"
        r"|choir|adlib|adlibs|ad ?libs?|voice|voices|singer|sing|lv|lvox|leadvox",
    ),
    ("guitar", r"rhy|rhythm|riff|slide|steel|amp|cab|fuzz|dist|crunch|clean|lp|sg"),
    ("keys", r"pad|pads|arp|arps|lead ?synth"),
    ("vocal", r"lead|main|ld|dbl|double|gang|shout|chant|ooh|oohs|aah|aahs|talk|rap"),
)
_COMPILED = tuple((role, re.compile(rf"(?:^| )(?:{pattern})(?: |$)")) for role, pattern in _RULES)


def normalise_name(name: str) -> str:
    """A track name reduced to lower-case words: "01_KikIn-2.wav" -> "kik in 2"."""
    stem = _AUDIO_EXT.sub("", name)
    stem = re.sub(r"([a-z])([A-Z])", r"\1 \2", stem)  # camelCase -> camel Case
    stem = re.sub(r"([A-Za-z])(\d)|(\d)([A-Za-z])", lambda m: " ".join(g for g in m.groups() if g), stem)
    words = re.sub(r"[^0-9a-z]+", " ", stem.lower()).split()
    while len(words) > 1 and words[0].isdigit():  # leading track numbers: "01 Kick"
        words.pop(0)
    return " ".join(words)


UNDERSIDE_WORDS = ("bottom", "btm", "bot", "under", "bttm", "b")  # a mic under a drum: Snare Bottom, Sn B


def is_underside(name: str) -> bool:
    """Does the name say the mic is under its drum (Snare Bottom, SN Btm)?"""
    return bool(set(normalise_name(name).split()) & set(UNDERSIDE_WORDS))


def role_from_name(name: str) -> Role:
    """The role a track's name implies; "other" when the name says nothing we know."""
    words = normalise_name(name)
    for role, pattern in _COMPILED:
        if pattern.search(words):
            return role
    return "other"


def assign_roles(names: list[str] | tuple[str, ...], *, overrides: dict[str, Role] | None = None) -> dict[str, Role]:
    """Role per track name: the sessionfix.toml override where one is given, else the name rules."""
    overrides = overrides or {}
    return {n: overrides.get(n) or role_from_name(n) for n in names}


# -------------------------------------------------------------------------------------- kit layout
@dataclass(frozen=True)
class KitPair:
    """A close mic and a reference mic that both hear the close mic's drum."""

    close: str
    reference: str
    instrument: Role  # the close mic's role: kick, snare, tom, hihat, cymbal


@dataclass(frozen=True)
class KitLayout:
    """Which kit mics hear which drum.

    `close` are the spot mics (kick, snare, tom, hihat, cymbal); `references` the mics that hear the
    whole kit (overheads, rooms); `pairs` every close x reference pairing; `siblings` the groups of
    close mics on one drum (Kick In + Kick Out, Snare Top + Snare Bottom), which must share polarity
    and timing.
    """

    close: tuple[str, ...]
    references: tuple[str, ...]
    pairs: tuple[KitPair, ...]
    siblings: tuple[tuple[str, ...], ...]

    @property
    def tracks(self) -> tuple[str, ...]:
        return self.close + self.references

    def siblings_of(self, name: str) -> tuple[str, ...]:
        """The other close mics on `name`'s drum (Snare Bottom for Snare Top); none when it has none."""
        group = next((g for g in self.siblings if name in g), ())
        return tuple(n for n in group if n != name)

    def only(self, usable: set[str]) -> KitLayout:
        """The layout without the tracks that are not in `usable`."""
        return KitLayout(
            close=tuple(n for n in self.close if n in usable),
            references=tuple(n for n in self.references if n in usable),
            pairs=tuple(p for p in self.pairs if p.close in usable and p.reference in usable),
            siblings=tuple(
                g for g in (tuple(n for n in group if n in usable) for group in self.siblings) if len(g) > 1
            ),
        )


SAME_DRUM_DB = 30.0  # two mics on one drum hear its hits within this of each other (in/out, top/bottom:
# 6-20 dB); a mic inside the other kick drum of a double kit hears them 40-44 dB down (render_real.md)


def drum_key(name: str, role: Role) -> str:
    """Close mics on the same drum share a key: "Snare Top" and "Snr Btm" -> "snare"; toms by number."""
    if role != "tom":
        return role
    numbers = re.findall(r"\d+", normalise_name(name))
    floor = re.search(r"(?:^| )(floor|ft|fl|low|lo)(?: |$)", normalise_name(name))
    return f"tom {'floor' if floor and not numbers else (numbers[0] if numbers else '')}".strip()


def kit_layout(roles: dict[str, Role], *, pairs: dict[str, tuple[str, ...]] | None = None) -> KitLayout:
    """The kit layout of a session from its roles; `pairs` (sessionfix.toml) replaces the pairing."""
    close = tuple(sorted(n for n, r in roles.items() if r in CLOSE_ROLES))
    references = tuple(sorted(n for n, r in roles.items() if r in REFERENCE_ROLES))
    pairing = pairs or {}
    kit_pairs = tuple(
        KitPair(close=c, reference=ref, instrument=roles[c]) for c in close for ref in (pairing.get(c, references))
    )
    groups: dict[str, list[str]] = {}
    for c in close:
        groups.setdefault(drum_key(c, roles[c]), []).append(c)
    siblings = tuple(tuple(g) for g in groups.values() if len(g) > 1)
    return KitLayout(close=close, references=references, pairs=kit_pairs, siblings=siblings)
