"""medsleep: sleep-time consolidation of FHIR Observations.

Keep every reading that matters, collapse normal stretches into summaries, archive the rest
with checksums, and explain every decision in a tamper-evident audit log.
"""

__version__ = "0.1.0"
