"""`offbench run` obtains what it lacks (offbench/data/fetch.py): downloads where the server answers, else
rebuilds; --no-fetch keeps the one-line error; a killed build leaves nothing that loads; two concurrent
requests build once; --preset quick is marked in the output and the records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from offbench.cli import main
from offbench.data import fetch
from offbench.data.loaders import load_minari, minari_local_ids
from offbench.data.suites import get_suite, hdf5_path
from offbench.errors import OffbenchError

TINY = ["--set", "hidden_dims=[32,32]", "--set", "batch_size=32"]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network (as on this machine, and deterministic elsewhere); private reference-return cache."""

    def no_network(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(fetch, "_reachable", {})
    monkeypatch.setenv("OFFBENCH_CACHE_DIR", str(tmp_path / "cache"))


def test_run_on_empty_data_folder_builds_a_tiny_dataset_and_finishes(tmp_path):
    assert not minari_local_ids()
    res = CliRunner().invoke(
        main,
        [
            "run",
            "--algo",
            "bc",
            "--suite",
            "locomotion",
            "--dataset",
            "hopper-random-v2",
            "--preset",
            "quick",
            "--build-size",
            "300",
            "--steps",
            "20",
            "--eval-every",
            "20",
            "--eval-episodes",
            "1",
            "--results",
            str(tmp_path / "r"),
            "--no-progress",
            *TINY,
        ],
    )
    assert res.exit_code == 0, res.output
    out = res.output
    assert "cannot download the original of hopper-random-v2 (rail.eecs.berkeley.edu unreachable" in out
    assert "hopper-random-v2 -> rebuilt/hopper-random-v2: 300 transitions, labelled 'rebuilt'" in out
    assert "quick look (--preset quick)" in out and "[preset quick: not the paper's protocol]" in out
    assert len(load_minari("rebuilt/hopper-random-v2")) == 300
    recs = sorted((tmp_path / "r").rglob("seed_*.json"))
    assert len(recs) == 2  # seeds: 2 from the preset; steps, episodes and size from the command line
    for path in recs:
        rec = json.loads(path.read_text())
        assert rec["status"] == "finished" and rec["preset"] == "quick" and rec["steps"] == 20
        assert rec["data"]["kind"] == "rebuilt" and rec["data"]["size"] == 300 and rec["eval_episodes"] == 1


def test_no_fetch_keeps_the_one_line_error(tmp_path):
    for args, message in (
        (["--dataset", "hopper-medium-v2"], "dataset 'hopper-medium-v2' is not available locally"),
        ([], "no dataset of suite 'locomotion' is available locally"),
    ):
        res = CliRunner().invoke(
            main,
            ["run", "--algo", "iql", "--suite", "locomotion", *args, "--no-fetch", "--results", str(tmp_path / "r")],
        )
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.output
    assert not minari_local_ids() and not (tmp_path / "r").exists()


def test_a_dataset_that_can_be_neither_downloaded_nor_built_is_one_line(tmp_path):
    res = CliRunner().invoke(
        main,
        ["run", "--algo", "iql", "--suite", "adroit", "--dataset", "pen-human-v1", "--results", str(tmp_path / "r")],
    )
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "cannot download it" in lines[0] and "cannot be rebuilt here" in lines[0]


def test_download_is_preferred_when_the_server_answers_and_a_failed_download_falls_back_to_a_build(monkeypatch):
    from conftest import write_hopper_hdf5

    suite = get_suite("locomotion")
    calls = []

    def fake_download(task, progress=True):
        calls.append(task.name)
        if task.name == "hopper-random-v2":
            hdf5_path(task).parent.mkdir(parents=True, exist_ok=True)
            write_hopper_hdf5(hdf5_path(task), steps=200)
        else:
            raise OSError("HTTP Error 404: Not Found")

    monkeypatch.setattr(fetch, "unreachable", lambda url: "")
    monkeypatch.setattr(fetch, "download", fake_download)
    said = []
    got = fetch.obtain(
        suite, ["hopper-random-v2", "halfcheetah-random-v2"], size=200, workers=1, progress=False, say=said.append
    )
    assert got == ["hopper-random-v2", "halfcheetah-random-v2"] and calls == got
    assert hdf5_path(suite.task("hopper-random-v2")).exists()
    assert "rebuilt/hopper-random-v2" not in minari_local_ids()  # downloaded, not built
    assert len(load_minari("rebuilt/halfcheetah-random-v2")) == 200
    assert any("download failed: HTTP Error 404" in m for m in said)


def test_several_missing_datasets_build_in_worker_processes():
    said = []
    got = fetch.obtain(
        get_suite("locomotion"),
        ["hopper-random-v2", "walker2d-random-v2"],
        size=150,
        workers=2,
        progress=False,
        say=said.append,
    )
    assert got == ["hopper-random-v2", "walker2d-random-v2"]
    assert "building 2 datasets in 2 worker processes (--build-workers)" in "\n".join(said)
    assert len(load_minari("rebuilt/hopper-random-v2")) == 150 and len(load_minari("rebuilt/walker2d-random-v2")) == 150


# A child process that builds hopper-random-v2 through fetch.build_locked; the Minari write is slowed down
# (so that two children overlap) or the process kills itself right after Minari wrote the data (before the
# dataset's metadata is complete), as a build killed mid-way would be.
CHILD = r"""
import os, signal, sys, time
import minari
from offbench.data import fetch
from offbench.recipes import writer
mode = sys.argv[1]
original = minari.create_dataset_from_buffers
def patched(*a, **k):
    if mode == "slow":
        time.sleep(5)
    ds = original(*a, **k)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return ds
minari.create_dataset_from_buffers = patched
name, how, secs = fetch.build_locked("hopper-random-v2", size=120, say=lambda m: print(m, flush=True))
print("RESULT", how, flush=True)
"""


def _child(mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def test_a_killed_build_leaves_nothing_that_loads():
    from offbench.data.staging import STAGE_PREFIX, minari_root, remove_stale_stages

    p = _child("kill")
    out, _ = p.communicate(timeout=300)
    assert p.returncode == -9, out
    assert "rebuilt/hopper-random-v2" not in minari_local_ids()
    assert not fetch.present(get_suite("locomotion").task("hopper-random-v2"))
    with pytest.raises(OffbenchError):
        load_minari("rebuilt/hopper-random-v2")
    stages = list(minari_root().glob(f"{STAGE_PREFIX}*"))
    assert stages and remove_stale_stages() == stages and not list(minari_root().glob(f"{STAGE_PREFIX}*"))
    # the next request builds it
    assert fetch.build_locked("hopper-random-v2", size=120)[1] == "built"
    assert len(load_minari("rebuilt/hopper-random-v2")) == 120


def test_two_concurrent_requests_build_the_dataset_once():
    a, b = _child("slow"), _child("slow")
    outs = [p.communicate(timeout=300)[0] for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    results = sorted(line.split()[1] for o in outs for line in o.splitlines() if line.startswith("RESULT"))
    assert results == ["built", "present"], outs
    assert sum("another process is obtaining it; waiting" in o for o in outs) == 1, outs
    assert len(load_minari("rebuilt/hopper-random-v2")) == 120


def test_presets_come_from_the_data_file_and_given_options_win():
    from offbench import presets

    values = presets.resolve("quick", "antmaze")
    assert values["steps"] > 0 and values["eval_episodes"] >= 1 and "not the paper's protocol" in values["note"]
    opts = {
        "steps": 1_000_000,
        "eval_every": None,
        "eval_episodes": None,
        "seeds": 1,
        "build_size": None,
        "datasets": (),
    }
    chosen, note = presets.apply("quick", "antmaze", opts, given={"steps"})
    assert chosen["steps"] == 1_000_000 and chosen["eval_episodes"] == values["eval_episodes"] and note
    assert presets.apply(None, "antmaze", opts, given=set()) == (opts, "")
    with pytest.raises(OffbenchError, match="unknown preset 'fast'; known presets: quick"):
        presets.resolve("fast", "antmaze")


def test_a_minari_id_asks_for_that_form_of_the_data(monkeypatch):
    from conftest import write_hopper_hdf5

    suite = get_suite("locomotion")
    task = suite.task("hopper-random-v2")
    hdf5_path(task).parent.mkdir(parents=True, exist_ok=True)
    write_hopper_hdf5(hdf5_path(task), steps=100)  # the original is present, the rebuilt one is not
    built = []
    monkeypatch.setattr(fetch, "_build_all", lambda names, *a: built.extend(names))
    assert fetch.obtain(suite, ["hopper-random-v2"], progress=False, say=lambda m: None) == ["hopper-random-v2"]
    assert built == []
    assert fetch.obtain(suite, ["rebuilt/hopper-random-v2"], progress=False, say=lambda m: None)
    assert built == ["hopper-random-v2"]
    with pytest.raises(OffbenchError, match="'D4RL/door/human-v2' is not available locally and cannot download it"):
        fetch.obtain(get_suite("adroit"), ["D4RL/door/human-v2"], progress=False, say=lambda m: None)


# --------------------------------------------------------------------------------------------------
# `offbench data download` is fetch's download, under the lock `offbench run` takes


def _lock_is_held(name: str, root=None) -> bool:
    import fcntl

    from offbench.data.staging import minari_root

    with open(Path(root or minari_root()) / ".offbench-locks" / f"{name.replace('/', '__')}.lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def test_data_download_of_a_d4rl_file(monkeypatch):
    task = get_suite("locomotion").task("hopper-medium-v2")
    dest = hdf5_path(task)
    seen = []

    class Response:
        headers = {"Content-Length": "3000"}

        def __init__(self):
            self.left = [b"x" * 2000, b"y" * 1000]

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self, n):
            seen.append(_lock_is_held("hopper-medium-v2"))
            return self.left.pop(0) if self.left else b""

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: seen.append(url) or Response())
    res = CliRunner().invoke(main, ["data", "download", "hopper-medium-v2"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines() == [f"downloaded {task.url} to {dest}"]  # the progress bar: stderr
    assert seen[0] == task.url and all(seen[1:]) and len(seen) == 4  # every chunk read under the dataset's lock
    assert dest.read_bytes() == b"x" * 2000 + b"y" * 1000 and os.listdir(dest.parent) == [dest.name]
    assert not _lock_is_held("hopper-medium-v2")

    def broken(url, timeout):
        raise OSError("HTTP Error 503: Service Unavailable")

    monkeypatch.setattr(urllib.request, "urlopen", broken)
    res = CliRunner().invoke(main, ["data", "download", "walker2d-medium-v2"])
    assert res.exit_code == 2, res.output
    url = get_suite("locomotion").task("walker2d-medium-v2").url
    assert res.output.strip().splitlines() == [
        f"error: cannot download {url} (HTTP Error 503: Service Unavailable); "
        "build it instead with `offbench data build walker2d-medium-v2`"
    ]
    assert os.listdir(dest.parent) == [dest.name]  # no partial file


def test_data_download_of_a_minari_dataset(monkeypatch):
    import minari

    from offbench.data.staging import minari_root

    res = CliRunner().invoke(main, ["data", "download", "door-human-v1"])  # no network (the autouse fixture)
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        "error: cannot download Minari dataset D4RL/door/human-v2 (huggingface.co unreachable: network is "
        "unreachable); build it instead with `offbench data build door-human-v1`"
    ]
    root = minari_root()
    written = []

    def fake_download(dataset_id):  # Minari writes into $MINARI_DATASETS_PATH: offbench's stage, not the root
        where = os.environ["MINARI_DATASETS_PATH"]
        written.append((dataset_id, where, _lock_is_held("door-human-v1", root)))
        os.makedirs(os.path.join(where, dataset_id, "data"))

    monkeypatch.setattr(fetch, "unreachable", lambda url: "")
    monkeypatch.setattr(minari, "download_dataset", fake_download)
    res = CliRunner().invoke(main, ["data", "download", "D4RL/door/human-v2"])
    assert res.exit_code == 0, res.output
    done = f"downloaded Minari dataset D4RL/door/human-v2 to {root / 'D4RL' / 'door' / 'human-v2'}"
    assert res.stdout.strip().splitlines() == [done]
    ((dataset_id, where, locked),) = written
    assert dataset_id == "D4RL/door/human-v2" and locked and os.path.dirname(where) == str(root) and where != str(root)
    assert (root / "D4RL" / "door" / "human-v2" / "data").is_dir() and not os.path.exists(where)  # published
