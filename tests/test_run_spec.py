"""A run's spec is checked whole before anything is obtained, built or trained (issue 26): option values, config
values by type and range (each range declared beside its default), and the data's shapes once loaded."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from offbench import registry
from offbench.cli import main
from offbench.config import check_ranges, in_range, parse_range, resolve
from offbench.data.suites import SUITES
from offbench.errors import OffbenchError
from offbench.training.checks import check_config

BUILTIN = ["awac", "awr", "bc", "cql", "filtered_bc", "iql", "onestep", "td3bc"]


def test_ranges_are_intervals():
    assert parse_range("(0, 1]") == (0.0, 1.0, False, True)
    assert parse_range("[1, inf)") == (1.0, float("inf"), True, False)
    assert in_range(0.7, "(0, 1)") and not in_range(1.0, "(0, 1)") and not in_range(0.0, "(0, 1)")
    assert in_range(1.0, "(0, 1]") and in_range(1, "[1, inf)") and not in_range(0, "[1, inf)")
    assert not in_range(float("nan"), "(-inf, inf)") and not in_range("0.5", "(0, 1)") and not in_range(True, "[0, 1]")
    assert in_range(None, "(0, 1)") and in_range([256, 256], "[1, inf)") and not in_range([256, 0], "[1, inf)")
    for bad in ("0..1", "(1, 0)", "[a, 1]"):
        with pytest.raises(OffbenchError, match="range"):
            parse_range(bad)
    with pytest.raises(
        OffbenchError, match=r"config key 'expectile' must be in \(0, 1\) \(got 1.5\); set it with --set"
    ):
        check_ranges({"expectile": 1.5}, {"expectile": "(0, 1)"})
    with pytest.raises(OffbenchError, match=r"'batch_size' must be in \[1, inf\)"):
        check_ranges({"batch_size": 0})  # the pipeline's own ranges apply to every algorithm


def test_register_checks_its_range_declarations():
    make = registry.get("bc").make
    with pytest.raises(OffbenchError, match=r"ranges for keys it does not have: \['expectle'\]"):
        registry.register("toy_ranges", make=make, default_config={"expectile": 0.7}, ranges={"expectle": "(0, 1)"})
    with pytest.raises(OffbenchError, match="'expectile' must be in"):
        registry.register("toy_ranges", make=make, default_config={"expectile": 1.7}, ranges={"expectile": "(0, 1)"})
    assert "toy_ranges" not in registry.names()


@pytest.mark.parametrize("name", BUILTIN)
def test_every_shipped_config_lies_in_its_ranges(name):
    """Every suite, dataset and fine-tuning layer of configs/<algo>.yaml passes the checks a run makes."""
    algo = registry.get(name)
    assert {"discount", "actor_lr"} & set(algo.ranges) or name in ("bc", "filtered_bc")
    for suite in SUITES.values():
        for task in [None, *suite.tasks]:
            for finetune in (False, True):
                config = resolve(algo.default_config, name, suite.name, task and task.name, None, finetune)
                check_config(config, algo.ranges)


def _cli(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo", "iql", "--suite", "kitchen", "--steps", 0], "--steps must be at least 1"),
        (["--algo", "iql", "--suite", "kitchen", "--eval-episodes", 0], "--eval-episodes must be at least 1"),
        (["--algo", "iql", "--suite", "kitchen", "--set", "expectile=1.5"], "'expectile' must be in (0, 1)"),
        (["--algo", "iql", "--suite", "antmaze", "--set", "tau=0"], "'tau' must be in (0, 1]"),
        (["--algo", "cql", "--suite", "antmaze", "--set", "critic_lr=-1e-4"], "'critic_lr' must be in (0, inf)"),
        (["--algo", "td3bc", "--suite", "adroit", "--set", "policy_freq=0"], "'policy_freq' must be in [1, inf)"),
        (["--algo", "bc", "--suite", "kitchen", "--online-steps", 10], "bc does not fine-tune online"),
        (["--algo", "iql", "--suite", "kitchen", "--from", "results/x"], "--from needs --online-steps"),
        (["--algo", "iql", "--suite", "kitchen", "--resume", "--overwrite"], "choose one"),
        (["--algo", "iql", "--suite", "kitchen", "--name", "a/b"], "--name 'a/b'"),
    ],
)
def test_the_spec_is_refused_before_any_data_is_obtained(monkeypatch, tmp_path, args, message):
    """`offbench run --suite kitchen --steps 0` used to start a 6-minute Kitchen build before refusing --steps 0."""
    import offbench.data.fetch as fetch

    def no_obtaining(*a, **k):
        raise AssertionError("the run obtained (downloaded or built) data before checking its options")

    monkeypatch.setattr(fetch, "obtain", no_obtaining)
    res = _cli("run", *args, "--results", tmp_path / "r", "--no-progress")
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.output
    assert not (tmp_path / "r").exists()
