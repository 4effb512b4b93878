"""One run identity (issue 26): ``identify`` alone derives the config, hash, variant, canonical dataset, results
folder, run and checkpoint directories; ``offbench run`` (prepare) and sweep planning both use it."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import tiny_overrides

from offbench.config import config_hash
from offbench.data.naming import is_dataset_file, results_name
from offbench.data.suites import SUITES
from offbench.runs.identity import identify
from offbench.runs.spec import RunSpec
from offbench.training.prepare import RunOptions, prepare


def test_identify_names_every_form_of_a_dataset_alike(tmp_path):
    loco = SUITES["locomotion"]
    forms = ["hopper-medium-v2", "rebuilt/hopper-medium-v2", str(tmp_path / "hopper_medium-v2.hdf5")]
    ids = [identify(RunSpec.of("cql", "locomotion", d, tmp_path, steps=1000)) for d in forms]
    for ident in ids:
        assert ident.dataset == ident.folder == "hopper-medium-v2"
        assert ident.config["reward_transform"] == "locomotion"  # cql.yaml's dataset layer applies to every name
        assert ident.run_dir == tmp_path / "locomotion" / "hopper-medium-v2" / "cql" / "steps=1k"
        assert ident.checkpoint_dir == ident.run_dir / "checkpoint-seeds0-0"
    assert len({i.config_hash for i in ids}) == 1
    own = identify(RunSpec.of("iql", "minari:mujoco__ant__x-v0", "mujoco/ant/x-v0", tmp_path, steps=10, online_steps=5))
    assert own.folder == "mujoco__ant__x-v0" and own.run_dir.parent.name == "iql-online" and own.finetune
    assert results_name(loco, "D4RL/door/human-v2") == "D4RL__door__human-v2"  # not a task of locomotion
    assert not is_dataset_file("hopper-medium-v2") and is_dataset_file("x.h5")


def test_run_and_identify_agree(hopper_file, tmp_path):
    """What `offbench run` prepares is what identify (and so a sweep's plan) names, for a d4rl cache-named file."""
    data = tmp_path / "hopper_random-v2.hdf5"  # d4rl's cache name of hopper-random-v2
    shutil.copy(hopper_file, data)
    assert is_dataset_file(str(data)) and is_dataset_file(str(Path(hopper_file)))
    sets = tiny_overrides(expectile=0.8)
    opts = RunOptions("iql", "locomotion", str(data), seeds=2, steps=20, overrides=sets, results=str(tmp_path / "r"))
    prep = prepare(opts, say=lambda _: None)
    ident = identify(RunSpec.of("iql", "locomotion", str(data), tmp_path / "r", overrides=sets, steps=20, seeds=(0, 1)))
    assert prep.directory == ident.run_dir and prep.variant == ident.variant
    assert prep.source.name == ident.folder == "hopper-random-v2"
    assert config_hash(prep.config) == ident.config_hash and ident.changed["expectile"] == 0.8
    assert ident.checkpoint_dir.name == "checkpoint-seeds0-1"
