"""``offbench report`` (kept import path): the command lives in :mod:`offbench.report.command`; the report's
stages are ``collect`` (records -> comparable cells), ``stats`` (rliable), ``tables`` (pandas), ``reference``
(published numbers), ``plots`` (rliable's figures) and ``html`` (the pages)."""

from offbench.report.command import FORMATS, Options, build, report_command

__all__ = ["FORMATS", "Options", "build", "report_command"]
