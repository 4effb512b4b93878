"""Evaluation: parallel host workers give the serial evaluator's numbers; reset seeds from the seed's value;
AntMaze episodes end at D4RL's goal radius; backend choice; the records' ``eval`` entry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from offbench import envs
from offbench.data.suites import get_suite
from offbench.data.tasks import ANTMAZE_GOAL_RADIUS
from offbench.envs import EnvFactory, ObsAdapter
from offbench.errors import OffbenchError
from offbench.evaluation import episodes as ep
from offbench.evaluation.evaluator import Evaluator, choose_backend, make_act_fn, make_evaluator
from offbench.evaluation.vector import ParallelEvaluator

HOPPER = EnvFactory("Hopper-v5", {}, 40)  # short episodes; some end early (the hopper falls)


def _linear_policy(obs_dim=11, act_dim=3, n_seeds=2):
    """Per-seed deterministic linear-tanh policies; ``act(state, obs, key, deterministic)`` as an Agent's."""
    w = jax.random.normal(jax.random.PRNGKey(1), (n_seeds, obs_dim, act_dim)) * 0.5

    def act(state, obs, key, deterministic=True):
        return jnp.tanh(obs @ state)

    return w, act


@pytest.mark.parametrize(
    "workers, width, episodes, main_steps",
    [(2, 2, 5, True), (1, 4, 9, True), (4, 2, 5, False)],
    ids=["main-steps-a-share", "one-worker", "one-worker-per-slot"],
)
def test_parallel_host_evaluation_gives_the_serial_numbers(workers, width, episodes, main_steps):
    seeds = [3, 4]
    states, act = _linear_policy(n_seeds=2)
    calls = []
    jitted = make_act_fn(act)

    def act_fn(s, o):
        calls.append(o.shape)
        return jitted(s, o)

    serial = Evaluator(HOPPER, ObsAdapter(), jitted, seeds, episodes, width)
    par = ParallelEvaluator(HOPPER, ObsAdapter(), act_fn, seeds, episodes, workers=workers, width=width)
    assert (par.owner == par.workers).any() == main_steps
    try:
        a, b = serial(states), par(states)
        again = par(states)  # the workers and this process's environments are reused
    finally:
        serial.close()
        par.close()
    for x in (b, again):
        np.testing.assert_array_equal(a.returns, x.returns)
        np.testing.assert_array_equal(a.lengths, x.lengths)
        np.testing.assert_array_equal(a.successes, x.successes)
    assert (np.ptp(a.lengths, axis=1) > 0).any()  # uneven episodes: the parallel slots are reused out of wave order
    assert len(set(a.returns.ravel().round(6))) == a.returns.size
    # one round trip per act call and one for the first resets: an episode that ends starts the slot's next
    # one in the same step; every act call has the serial path's batch shape (one compile)
    assert par.timings["round_trips"] == len(calls) // 2 + 1
    assert set(calls) == {(2, width, 11)} and jitted._cache_size() == 1
    assert not par._procs and not par.local.envs  # closed


def test_evaluators_report_the_episodes_done_as_they_finish():
    """The run's bar shows "evaluating d/n episodes" from this callback (issue 30): counts rise to n_seeds x E."""
    states, act = _linear_policy(n_seeds=2)
    for make in (
        lambda: Evaluator(HOPPER, ObsAdapter(), make_act_fn(act), [0, 1], 5, 2),
        lambda: ParallelEvaluator(HOPPER, ObsAdapter(), make_act_fn(act), [0, 1], 5, workers=1, width=2),
    ):
        ev, seen = make(), []
        ev.progress = lambda done, total, seen=seen: seen.append((done, total))
        try:
            ev(states)
        finally:
            ev.close()
        assert seen[-1] == (10, 10) and all(t == 10 for _, t in seen)
        assert [d for d, _ in seen] == sorted({d for d, _ in seen}) and len(seen) >= 3  # rising, during the run


def test_workers_start_no_jax_and_leave_nothing_behind():
    states, act = _linear_policy(n_seeds=1)
    par = ParallelEvaluator(HOPPER, ObsAdapter(), make_act_fn(act), [0], 2, workers=2, width=2)
    par(states)  # the workers have built and stepped their environments
    mods = par.worker_modules()
    procs = list(par._procs)
    assert len(mods) == 2 and all("jax" not in m and "jaxlib" not in m for m in mods)
    assert all("mujoco" in m for m in mods)
    par.close()
    assert all(not p.is_alive() for p in procs) and all(p.exitcode is not None for p in procs)


def test_a_failing_environment_is_one_error_and_stops_the_workers():
    states, act = _linear_policy(obs_dim=11, act_dim=3, n_seeds=1)
    bad = EnvFactory("Hopper-v5", {"no_such_argument": 1}, 10)
    par = ParallelEvaluator(bad, ObsAdapter(), make_act_fn(act), [0], 1, workers=1)
    with pytest.raises(OffbenchError, match="evaluation environment failed in worker 0"):
        par(states)
    assert not par._procs
    par = ParallelEvaluator(bad, ObsAdapter(), make_act_fn(act), [0], 2, workers=1, width=2)  # slot 1: here
    procs = None
    with pytest.raises(OffbenchError, match="evaluation environment failed in the main process: TypeError"):
        par._start()
        procs = list(par._procs)
        par(states)
    assert not par._procs and all(not p.is_alive() for p in procs)


def test_reset_seeds_come_from_the_seed_value():
    # the same seed gets the same start states in any run; seeds 0-4 and 5-9 run separately differ
    states, act = _linear_policy(n_seeds=2)
    run_a = Evaluator(HOPPER, ObsAdapter(), make_act_fn(act), [5, 6], 2, 2)(states)
    one = Evaluator(HOPPER, ObsAdapter(), make_act_fn(act), [6], 2, 2)(states[1:])
    np.testing.assert_array_equal(run_a.returns[1], one.returns[0])
    first = {ep.eval_reset_seed(s, j) for s in range(5) for j in range(100)}
    second = {ep.eval_reset_seed(s, j) for s in range(5, 10) for j in range(100)}
    assert len(first) == 500 and len(second) == 500 and not first & second
    e0 = envs.make_env("Hopper-v5")
    starts = [e0.reset(seed=ep.eval_reset_seed(s, 0))[0] for s in (0, 5)]
    assert not np.allclose(starts[0], starts[1])


def test_online_reset_seeds_of_neighbouring_seeds_do_not_collide():
    from offbench.training.online_envs import OnlineEnvs

    class Fake(OnlineEnvs):
        def __init__(self, seeds, n_envs):
            self.seeds, self.n_envs = list(seeds), n_envs
            self.episode = np.zeros((len(seeds), n_envs), np.int64)

    e = Fake(range(10), 2)
    seen = set()
    for episode in range(300):  # the old scheme collided after 100 episodes
        e.episode[:] = episode
        seen |= {e._seed(i, j) for i in range(10) for j in range(2)}
    assert len(seen) == 10 * 2 * 300
    evals = {ep.eval_reset_seed(s, j) for s in range(10) for j in range(300)}
    assert not seen & evals


def _antmaze_env():
    task = get_suite("antmaze").task("antmaze-umaze-v2")
    src = type(
        "Src",
        (),
        {
            "env_id": task.env_id,
            "env_kwargs": task.env_kwargs,
            "task": task,
            "max_episode_steps": task.max_episode_steps,
            "eval_env_spec": None,
        },
    )()
    factory = ep.env_factory_for(src)
    assert factory.goal_radius == ANTMAZE_GOAL_RADIUS == 0.5
    return factory()


@pytest.mark.parametrize("offset, ends", [(0.47, True), (0.55, False)])
def test_antmaze_episode_ends_within_d4rls_goal_radius(offset, ends):
    env = _antmaze_env()
    try:
        obs, _ = env.reset(seed=0)
        inner = env.unwrapped
        ant = inner.ant_env
        qpos, qvel = ant.data.qpos.copy(), ant.data.qvel.copy() * 0
        qpos[:2] = inner.goal + np.array([offset, 0.0])  # 0.47: inside D4RL's 0.5, outside Gymnasium's 0.45
        ant.set_state(qpos, qvel)
        obs, r, term, trunc, info = env.step(np.zeros(8, np.float32))
        d = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
        assert (d <= 0.5) == ends and abs(d - offset) < 0.05
        assert term == ends and info["success"] == ends and r == float(ends)
    finally:
        env.close()


def test_non_antmaze_tasks_get_no_goal_wrapper():
    src = type(
        "Src",
        (),
        {"env_id": "Hopper-v5", "env_kwargs": {}, "task": None, "max_episode_steps": None, "eval_env_spec": None},
    )()
    assert ep.env_factory_for(src).goal_radius is None


def test_backend_choice():
    assert choose_backend("auto", "AntMaze_UMaze-v4") == "host"
    assert choose_backend("host", "Hopper-v5") == "host"
    if jax.default_backend() == "cpu":
        assert choose_backend("auto", "Hopper-v5") == "host"
    assert choose_backend("mjx", "Hopper-v5") == "mjx"
    with pytest.raises(OffbenchError, match="does not support 'FrankaKitchen-v1'"):
        choose_backend("mjx", "FrankaKitchen-v1")
    with pytest.raises(OffbenchError, match="unknown evaluation backend"):
        choose_backend("gpu", "Hopper-v5")


def test_make_evaluator_workers():
    src = type(
        "Src",
        (),
        {"env_id": "Hopper-v5", "env_kwargs": {}, "task": None, "max_episode_steps": 5, "eval_env_spec": None},
    )()
    _, act = _linear_policy()
    fn = make_act_fn(act)
    assert isinstance(make_evaluator(src, ObsAdapter(), fn, act, [0], 2, "host", 0), Evaluator)
    par = make_evaluator(src, ObsAdapter(), fn, act, [0, 1], 10, "host", 3)
    assert isinstance(par, ParallelEvaluator) and par.workers == 3 and par.backend == "host"
    with pytest.raises(OffbenchError, match="--eval-workers"):
        make_evaluator(src, ObsAdapter(), fn, act, [0], 2, "host", -1)


def test_default_workers_leave_this_process_a_core_and_are_serial_on_two_cores(monkeypatch):
    from offbench.evaluation import evaluator

    assert [evaluator.default_workers(c) for c in (1, 2, 3, 16)] == [0, 0, 2, 15]
    src = type(
        "Src",
        (),
        {"env_id": "Hopper-v5", "env_kwargs": {}, "task": None, "max_episode_steps": 5, "eval_env_spec": None},
    )()
    _, act = _linear_policy()
    fn = make_act_fn(act)
    for cores, kind, workers in ((2, Evaluator, 0), (4, ParallelEvaluator, 3)):
        monkeypatch.setattr(evaluator.os, "sched_getaffinity", lambda pid, c=cores: set(range(c)))
        ev = make_evaluator(src, ObsAdapter(), fn, act, [0, 1], 10, "host", None)
        assert type(ev) is kind and ev.workers == workers
        ev.close()


def test_suite_schedules_follow_their_references():
    # IQL's README commands for AntMaze (--eval_episodes=100 --eval_interval=100000), its flags elsewhere
    am, loco = get_suite("antmaze"), get_suite("locomotion")
    assert (am.eval_episodes, am.eval_schedule(False), am.eval_schedule(True)) == (100, 100_000, 100_000)
    assert (loco.eval_episodes, loco.eval_schedule(False)) == (10, 5000)
    assert get_suite("maze2d").eval_episodes == 100  # CORL configs/offline/iql/maze2d


def test_run_records_say_how_they_were_evaluated(hopper_file, tmp_path):
    from conftest import tiny_overrides

    from offbench.training import prepare as preparing
    from offbench.training import run as run_module

    opts = preparing.RunOptions(
        algo="bc",
        suite="locomotion",
        dataset=hopper_file,
        seeds=2,
        steps=20,
        eval_every=10,
        eval_episodes=2,
        overrides=tiny_overrides(log_every=10),
        results=str(tmp_path),
        progress=False,
        eval_workers=2,
        eval_backend="host",
    )
    par = run_module.run(opts, say=lambda m: None)
    serial = run_module.run(
        preparing.RunOptions(**{**opts.__dict__, "eval_workers": 0, "results": str(tmp_path / "s")}), say=lambda m: None
    )
    assert par[0]["eval"] == {"backend": "host", "episodes": 2, "every": 10, "workers": 2}
    assert serial[0]["eval"]["workers"] == 0
    assert [r["curve"] for r in par] == [r["curve"] for r in serial]
    default = preparing.prepare(
        preparing.RunOptions(
            algo="bc", suite="locomotion", dataset=hopper_file, overrides=tiny_overrides(), progress=False
        ),
        say=lambda m: None,
    )
    assert default.opts.eval_every == 5000


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "import jax.numpy as jnp\n"
        "from offbench.envs import EnvFactory, ObsAdapter\n"
        "from offbench.evaluation.vector import ParallelEvaluator\n"
        "if __name__ == '__main__':\n"
        "    par = ParallelEvaluator(EnvFactory('Hopper-v5', {}, 1000), ObsAdapter(),\n"
        "                            lambda s, o: jnp.zeros(o.shape[:2] + (3,)), [0], 2, workers=2, width=2)\n"
        "    par.worker_modules()\n"
        "    print(' '.join(str(p.pid) for p in par._procs), flush=True)\n"
        "    while True:\n"
        "        par(None)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}
    )
    pids = [int(x) for x in proc.stdout.readline().split()]
    assert len(pids) == 2
    time.sleep(1.0)  # mid-evaluation
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.time() + 20
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)


def test_bad_evaluation_options_fail_before_anything_is_written(hopper_file, tmp_path):
    from click.testing import CliRunner

    from offbench.cli import main

    for extra, message in (
        (["--eval-workers", "-1"], "--eval-workers must be >= 0"),
        (["--eval-backend", "gpu"], "Invalid value for '--eval-backend'"),
    ):
        res = CliRunner().invoke(
            main,
            [
                "run",
                "--algo",
                "bc",
                "--suite",
                "locomotion",
                "--dataset",
                hopper_file,
                "--steps",
                "10",
                "--results",
                str(tmp_path / "r"),
                "--no-progress",
                *extra,
            ],
        )
        assert res.exit_code == 2 and message in res.output
        assert not (tmp_path / "r").exists()
