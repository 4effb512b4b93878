"""Command-line conventions shared by the commands of every stage (``run``, ``config``, ``sweep``)."""

from __future__ import annotations

import logging

import click


def expand_set(args: list[str]) -> list[str]:
    """``--set a=1 b=2`` means ``--set a=1 --set b=2``: the words after one ``--set`` that are ``key=value``
    (and not options) belong to it, as the README and the error messages write them."""
    out, i = [], 0
    while i < len(args):
        out.append(args[i])
        if args[i] == "--set" and i + 1 < len(args):
            out.append(args[i + 1])
            i += 2
            while i < len(args) and not args[i].startswith("-") and "=" in args[i]:
                out += ["--set", args[i]]
                i += 1
            continue
        i += 1
    return out


class SetCommand(click.Command):
    """A command whose ``--set`` takes one or several ``key=value`` words."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, expand_set(list(args)))


class _EchoHandler(logging.Handler):
    """Writes a record's message to the current stderr through click (as the CLI always wrote its messages)."""

    def emit(self, record):
        click.echo(self.format(record), err=True)


def cli_logging(level: int) -> None:
    """The CLI's messages go through the ``offbench`` logger (library users route or silence them with
    ``logging``); on the command line they are printed to stderr as before, at ``level`` (``-q``: warnings,
    ``-v``: debug)."""
    log = logging.getLogger("offbench")
    if not any(isinstance(h, _EchoHandler) for h in log.handlers):
        handler = _EchoHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False  # printed once, by the CLI's handler
    log.setLevel(level)
