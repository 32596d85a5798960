"""Run reports: report.md and a self-contained report.html from a run folder, plus a short text summary."""

from kernelagent.report.render import summarise, write_reports

__all__ = ["summarise", "write_reports"]
