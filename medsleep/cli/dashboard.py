"""Commands of the dashboard room (registered on ``app`` when imported)."""

from __future__ import annotations
