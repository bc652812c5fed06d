"""Commands of the export room (registered on ``app`` when imported)."""

from __future__ import annotations
