"""Behaviour is unchanged across the run refactor (issue 26): the same seeds, config and data give bit-identical
records. The literals below were produced by the code at commit 721efbc (before the run became a value), through
the real code path (``offbench.training.run.run``) on the session's hdf5 fixture (``conftest.write_hopper_hdf5``,
Hopper-v5 under seeded random actions): a tiny IQL offline run and a tiny fine-tuning run, 2 seeds each. Floats
are compared exactly (``==``), never approximately."""

from __future__ import annotations

from conftest import run_options

from offbench.training.run import run

FINGERPRINT = "453147d54df185fa"  # the fixture's data (records.data.fingerprint)

OFFLINE = [  # (seed 0, seed 1): curve (step, score, return_mean), final metrics
    {
        "curve": [(20, 0.8420490097856911, 7.132788867011845), (40, 0.8442256987686436, 7.203630783817004)],
        "metrics": {
            "actor_loss": 0.3478381335735321,
            "adv": -1.3103915452957153,
            "critic_loss": 156.63755798339844,
            "q": 0.37707969546318054,
            "v": 0.06566985696554184,
            "value_loss": 0.8068912625312805,
            "weight": 0.10416410118341446,
        },
    },
    {
        "curve": [(20, 1.104243769794296, 15.666106911413111), (40, 1.1469939886590181, 17.057443694911246)],
        "metrics": {
            "actor_loss": 4.171125888824463,
            "adv": -0.35544490814208984,
            "critic_loss": 153.07981872558594,
            "q": 1.0045675039291382,
            "v": 0.37327221035957336,
            "value_loss": 0.21552573144435883,
            "weight": 1.1618789434432983,
        },
    },
]

FINETUNE = [  # 40 offline steps, then 40 environment steps (1 env, 1 update per env step)
    {
        "curve": [
            (20, 0.845009151951266, 7.229128834121272),
            (40, 0.9074167758223048, 9.26023007683667),
            (60, 1.07455325515812, 14.699807644852159),
            (80, 1.1187353192373288, 16.137744866151436),
        ],
        "offline_score": 0.9074167758223048,
        "online_episode_returns": [5.768844990030699],
        "metrics": {
            "actor_loss": 2.483977794647217,
            "adv": -0.4315579831600189,
            "critic_loss": 155.3451690673828,
            "q": 1.3080406188964844,
            "v": -0.5646270513534546,
            "value_loss": 0.21559546887874603,
            "weight": 0.815801739692688,
        },
    },
    {
        "curve": [
            (20, 1.1437276163634937, 16.951137246802922),
            (40, 1.0393009373394593, 13.552495472255451),
            (60, 0.980011174292501, 11.622867264429015),
            (80, 1.035151469282, 13.417448034052562),
        ],
        "offline_score": 1.0393009373394593,
        "online_episode_returns": [3.661212880677758],
        "metrics": {
            "actor_loss": 3.9895315170288086,
            "adv": -0.09288451820611954,
            "critic_loss": 141.75192260742188,
            "q": 2.216588020324707,
            "v": 0.39373350143432617,
            "value_loss": 0.06606919318437576,
            "weight": 1.2085671424865723,
        },
    },
]

RECORD_KEYS = {  # the record's top-level fields at 721efbc (a fine-tuning record adds FINETUNE_KEYS)
    "algo", "command", "compile_s", "config", "config_hash", "curve", "data", "dataset", "diverged", "elapsed_s",
    "env", "eval", "eval_episodes", "eval_every", "final_score", "finished_at", "last_score", "metrics",
    "online_steps", "preset", "reference", "run_dir", "score_type", "seed", "seeds_in_run", "status", "step",
    "steps", "suite", "train_s", "updated_at", "variant", "versions",
}  # fmt: skip
FINETUNE_KEYS = {
    "corl_regret", "corl_regret_reason", "env_steps", "eval_regret", "finetune", "offline_score", "offline_steps",
    "online_envs", "online_episode_returns", "online_episodes", "online_score", "online_updates", "replay_capacity",
    "updates_per_env_step",
}  # fmt: skip


def _check(recs: list[dict], pinned: list[dict], steps: int) -> None:
    assert [r["seed"] for r in recs] == [0, 1]
    for rec, pin in zip(recs, pinned):
        assert rec["status"] == "finished" and rec["step"] == steps
        assert rec["data"]["fingerprint"] == FINGERPRINT
        assert [(c["step"], c["score"], c["return_mean"]) for c in rec["curve"]] == pin["curve"]
        assert rec["final_score"] == pin["curve"][-1][1] == rec["last_score"]
        assert rec["metrics"] == pin["metrics"]
        for key in ("offline_score", "online_episode_returns"):
            if key in pin:
                assert rec[key] == pin[key], key


def test_offline_run_is_bit_identical(hopper_file, tmp_path):
    recs = run(run_options(hopper_file, tmp_path), say=lambda _: None)
    _check(recs, OFFLINE, 40)
    assert RECORD_KEYS <= set(recs[0]) and not FINETUNE_KEYS & set(recs[0])


def test_finetuning_run_is_bit_identical(hopper_file, tmp_path):
    recs = run(run_options(hopper_file, tmp_path, online_steps=40), say=lambda _: None)
    _check(recs, FINETUNE, 40 + 40)
    assert recs[0]["online_score"] == FINETUNE[0]["curve"][-1][1] and recs[0]["env_steps"] == 40
    assert RECORD_KEYS | FINETUNE_KEYS <= set(recs[0])
