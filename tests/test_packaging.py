"""The installed wheel carries everything a run needs (issue 16): algorithms, configs and reference tables as
package data, found through importlib.resources from outside the source tree.

The wheel is built from this checkout and unpacked with ``pip install --no-deps --target`` (the dependencies are
this environment's); the checks run in a subprocess whose working directory and import path exclude the checkout
and its editable install. ``.ci/run`` also installs the wheel with its dependencies into a fresh venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheels = list((tmp / "dist").glob("offbench-*.whl"))
    assert len(wheels) == 1
    target = tmp / "site"
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheels[0])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert inst.returncode == 0, inst.stderr[-2000:]
    return target


def _run(target: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OFFBENCH_CONFIGS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(target)  # before site-packages, so the wheel's offbench shadows the editable one
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_carries_configs_algorithms_and_references(installed, tmp_path):
    code = (
        "import offbench, offbench.algorithms\n"
        "from offbench.resources import configs_dir, reference_dir\n"
        "print(offbench.__file__); print(offbench.algorithms.__path__[0]); print(configs_dir()); print(reference_dir())\n"
    )
    out = _run(installed, code, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    paths = out.stdout.split()
    assert len(paths) == 4
    for p in paths:  # every one from the wheel, none from the checkout
        assert Path(p).resolve().is_relative_to(installed.resolve()), p
    assert (Path(paths[2]) / "iql.yaml").exists() and (Path(paths[3]) / "published_scores.csv").exists()


def test_installed_cli_lists_algorithms_and_resolves_paper_configs(installed, tmp_path):
    cli = "import sys; from offbench.cli import main; sys.exit(main(args=sys.argv[1:], prog_name='offbench'))"
    out = _run(installed, cli.replace("sys.argv[1:]", "['list', 'algorithms']"), tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    names = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert {"iql", "bc", "filtered_bc", "awr", "awac", "onestep", "td3bc", "cql"} <= names
    assert "NOT LOADED" not in out.stdout

    out = _run(installed, cli.replace("sys.argv[1:]", "['config', 'iql', '--suite', 'antmaze']"), tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    values = {
        line.split(":")[0]: line.split(":", 1)[1].split("#")[0].strip()
        for line in out.stdout.splitlines()
        if ":" in line and not line.startswith("#")
    }
    assert float(values["expectile"]) == 0.9
    beta_key = "beta" if "beta" in values else "temperature"  # the key's name may change (issue 12)
    assert float(values[beta_key]) == 10.0
    assert "suite:antmaze" in next(line for line in out.stdout.splitlines() if line.startswith("expectile"))

    out = _run(installed, cli.replace("sys.argv[1:]", "['config', 'cql', '--suite', 'antmaze']"), tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lagrange = [line for line in out.stdout.splitlines() if line.startswith("lagrange")]
    assert lagrange and "true" in lagrange[0] and "suite:antmaze" in lagrange[0]


def test_missing_config_file_is_an_error_not_defaults(installed, tmp_path):
    empty = tmp_path / "noconfigs"
    empty.mkdir()
    code = (
        f"import os; os.environ['OFFBENCH_CONFIGS'] = {str(empty)!r}\n"
        "from offbench import registry\nfrom offbench.config import resolve\nfrom offbench.errors import OffbenchError\n"
        "try:\n    resolve(registry.get('iql').default_config, 'iql', 'antmaze')\n"
        "except OffbenchError as e:\n    print('ERROR', e)\n"
    )
    out = _run(installed, code, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ERROR") and "iql.yaml" in out.stdout
