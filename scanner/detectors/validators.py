"""Structural checks of candidate secrets: a token's checksum, a JWT that decodes, a key that parses.

Each validator takes the secret's bytes and returns True when it is well formed. Rules name a
validator by its key in VALIDATORS.
"""
from __future__ import annotations

from typing import Callable

VALIDATORS: dict[str, Callable[[bytes], bool]] = {}
