"""The README's commands through the real ``offbench`` command line, at tiny sizes (issue 26).

Fine-tuning runs in a pseudo-terminal with the progress bar on and more steps than ``log_every``, as a user
runs it: the crash of issue 26 (``FinetuneRun`` passing a rate to ``Run._postfix()``) happened only there,
while every other test ran with ``--no-progress`` or fewer steps than ``log_every``. The other README commands
(offline run, ``--from``, report, status, data list, list, config) run once each on the hdf5 fixture."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from conftest import OFFBENCH, private_env

TINY = ["--set", "hidden_dims=[32,32]", "batch_size=32", "log_every=10", "--eval-episodes", "1", "--eval-workers", "0"]


def in_terminal(args: list, env: dict, timeout: float = 240) -> tuple[int, str]:
    """``offbench ARGS`` with a pseudo-terminal as its stdin, stdout and stderr (what a user's shell gives it):
    its exit status and everything it printed. Killed (and the test failed) after ``timeout`` seconds."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a terminal 160 columns wide
    proc = subprocess.Popen([*OFFBENCH, *map(str, args)], env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out, deadline = bytearray(), time.time() + timeout
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal closed it
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(
                f"offbench {' '.join(map(str, args))} hung; its last output: {out[-1500:].decode(errors='replace')}"
            )
        return proc.wait(timeout=30), out.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke") / "results"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return private_env(tmp_path_factory.mktemp("smoke-data"))


def _records(directory: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("seed_*.json"))]


def test_finetuning_with_the_progress_bar_in_a_terminal(hopper_file, results, env):
    """README "Offline -> online fine-tuning", first command, progress bar on: 40 offline steps and 30
    environment steps, logged every 10 (the online step's first call compiles for over a second, so the bar's
    env-steps/s postfix is set at least once: the call that crashed)."""
    args = ["run", "--algo", "iql", "--suite", "locomotion", "--dataset", hopper_file, "--steps", 40]
    args += ["--online-steps", 30, "--eval-every", 20, "--results", results, *TINY]
    rc, out = in_terminal(args, env)
    assert rc == 0 and "Traceback" not in out, out[-3000:]
    assert "final normalised score per seed" in out and "env steps/s" in out, out[-3000:]
    assert "evaluating: " in out and " episodes" in out, out[-3000:]  # an evaluation shows its episodes done
    (directory,) = (results / "locomotion" / "hopper-random-v2" / "iql-online").glob("*steps=40__online=30")
    (rec,) = _records(directory)
    assert rec["status"] == "finished" and rec["env_steps"] == 30 and rec["online_score"] is not None


def _cli(*args):
    """``offbench ARGS`` in this process (the same click entry point as the installed script)."""
    from click.testing import CliRunner

    from offbench.cli import main

    res = CliRunner().invoke(main, list(map(str, args)))
    assert res.exit_code == 0, (res.output[-2000:], res.exception)
    return res.output


def test_offline_run_then_from_then_report_and_status(hopper_file, results, tmp_path):
    """README "Running", "Offline -> online" (``--from`` a finished offline run), "Report" and ``status``."""
    ds = ["--algo", "iql", "--suite", "locomotion", "--dataset", hopper_file, "--results", results, *TINY]
    out = _cli("run", *ds, "--steps", 20, "--eval-every", 20, "--no-progress")
    assert "final normalised score per seed" in out
    (offline_dir,) = (results / "locomotion" / "hopper-random-v2" / "iql").glob("*steps=20")
    assert [r["status"] for r in _records(offline_dir)] == ["finished"]
    out = _cli("run", *ds, "--from", offline_dir, "--online-steps", 10, "--eval-every", 10, "--no-progress")
    assert "final normalised score per seed" in out
    (online_dir,) = (results / "locomotion" / "hopper-random-v2" / "iql-online").glob("*steps=20__online=10")
    (rec,) = _records(online_dir)
    assert rec["status"] == "finished" and rec["offline_steps"] == 20 and rec["env_steps"] == 10

    _cli("report", "--results", results, "--out", tmp_path / "report", "--format", "md,csv", "--reps", 20)
    assert "hopper-random-v2" in (tmp_path / "report" / "README.md").read_text()
    out = _cli("status", "--results", results)
    done = [ln for ln in out.splitlines() if ln.startswith("done")]
    assert len(done) >= 2, out  # the offline run and the --from run (and the terminal test's run)


def test_readme_listing_commands():
    assert "hopper-medium-v2" in _cli("data", "list", "--suite", "locomotion")
    assert "iql" in _cli("list", "algorithms")
    assert "antmaze" in _cli("list", "suites")
    assert "door-human-v1" in _cli("list", "datasets", "--suite", "adroit")
    assert "expectile" in _cli("config", "iql", "--suite", "antmaze")
