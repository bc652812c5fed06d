"""Scoring consolidation against labels, and the peers it is measured against (pure)."""

from medsleep.evaluate.peers import (
    PeerResult,
    hourly_downsample,
    news2_rules,
    swinging_door,
    swinging_door_matched,
)
from medsleep.evaluate.scoring import Labels, Score, compression, score_labelled

__all__ = [
    "Labels",
    "PeerResult",
    "Score",
    "compression",
    "hourly_downsample",
    "news2_rules",
    "score_labelled",
    "swinging_door",
    "swinging_door_matched",
]
