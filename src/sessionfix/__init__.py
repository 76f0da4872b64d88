"""sessionfix: scan and repair multitrack sessions before mixing."""

__version__ = "0.1.0"
