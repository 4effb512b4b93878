"""The ``offbench`` command line, on top of every stage: ``main`` holds ``run``, ``config`` and ``list``; the
other subcommands live with their stage (data, report, sweeps) and are attached here."""

from offbench.cli.data import data_command
from offbench.cli.data_card import check_cmd, info_cmd
from offbench.cli.main import main
from offbench.report.command import report_command
from offbench.sweeps.command import sweep_command
from offbench.sweeps.status import status_command
from offbench.validation.command import validate_command

data_command.add_command(info_cmd, "info")
data_command.add_command(check_cmd, "check")
for _name, _cmd in (
    ("data", data_command),
    ("report", report_command),
    ("sweep", sweep_command),
    ("status", status_command),
    ("validate", validate_command),
):
    main.add_command(_cmd, _name)

__all__ = ["main"]
