"""Commands of the serve room (registered on ``app`` when imported)."""

from __future__ import annotations
