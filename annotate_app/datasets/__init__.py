"""Turning judgments into datasets: aggregation, agreement, and the export writers."""
