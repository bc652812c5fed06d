"""The sleep-time job: one run over the backlog, shard by shard, on any executor, on a schedule."""

from medsleep.consolidate.executors import ExecutorSpec, parse_executor
from medsleep.consolidate.job import ConsolidationReport, consolidate

__all__ = ["ConsolidationReport", "ExecutorSpec", "consolidate", "parse_executor"]
