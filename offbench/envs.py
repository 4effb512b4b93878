"""Creating evaluation / interaction environments (Gymnasium, Gymnasium-Robotics).

JAX-free on purpose: evaluation worker processes (:mod:`offbench.evaluation.workers`) import this module
and nothing that starts JAX.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import tempfile
import warnings
import zlib

import numpy as np

from offbench.errors import OffbenchError

_REGISTERED = False


def _register_all():
    global _REGISTERED
    if not _REGISTERED:
        import gymnasium as gym

        try:
            import gymnasium_robotics

            gym.register_envs(gymnasium_robotics)
        except ImportError:  # pragma: no cover - a dependency, but keep plain Gymnasium usable
            pass
        from offbench import d4rl_envs  # D4RL's own tasks (D4RL-*), for the original D4RL hdf5 files

        d4rl_envs.register()
        _REGISTERED = True


def registered_kwargs(env_id: str) -> dict:
    """The kwargs Gymnasium's registry gives ``env_id`` by default ({} for an unregistered id)."""
    import gymnasium as gym

    _register_all()
    try:
        return dict(gym.spec(env_id).kwargs)
    except gym.error.Error:
        return {}


def make_env(env_id: str, env_kwargs: dict | None = None, max_episode_steps: int | None = None):
    import gymnasium as gym

    _register_all()
    kwargs = dict(env_kwargs or {})
    if max_episode_steps:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return drop_maze_xml(gym.make(env_id, **kwargs))
        except gym.error.Error as exc:
            raise OffbenchError(f"cannot create environment {env_id!r}: {exc}") from exc


def clean_spec_json(spec_json: str) -> str:
    """A Minari ``env_spec``/``eval_env_spec`` JSON readable by this Gymnasium: the keys Gymnasium 1.0 dropped
    from ``EnvSpec`` (``order_enforce``, ``apply_api_compatibility``, ``autoreset``) removed, as Minari itself
    removes them before ``EnvSpec.from_json`` (``minari/dataset/minari_dataset.py`` L130-150, Minari 0.5.4).
    Minari removes them by string replacement; this parses the JSON, so any spacing or order works."""
    try:
        d = json.loads(spec_json)
    except ValueError as exc:
        raise OffbenchError(f"the dataset's environment spec is not valid JSON ({exc}); pass --set env_id=ENV") from exc
    for key in ("order_enforce", "apply_api_compatibility", "autoreset"):
        d.pop(key, None)
    return json.dumps(d)


def spec_from_json(spec_json: str):
    """A Gymnasium ``EnvSpec`` from a Minari spec JSON (cleaned as Minari cleans it: :func:`clean_spec_json`)."""
    import gymnasium as gym

    try:
        return gym.envs.registration.EnvSpec.from_json(clean_spec_json(spec_json))
    except (ValueError, TypeError, KeyError) as exc:
        raise OffbenchError(
            f"the dataset's environment spec cannot be read by Gymnasium {gym.__version__} "
            f"({str(exc).splitlines()[0][:120]}); pass --set env_id=ENV"
        ) from exc


def make_env_from_spec(spec_json: str):
    """An environment from a Minari ``eval_env_spec``/``env_spec`` (a Gymnasium EnvSpec as JSON)."""
    import gymnasium as gym

    _register_all()
    spec = spec_from_json(spec_json) if isinstance(spec_json, str) else spec_json
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return drop_maze_xml(gym.make(spec))
        except gym.error.Error as exc:
            raise OffbenchError(f"cannot create environment {spec.id!r} from the dataset's spec: {exc}") from exc


def drop_maze_xml(env):
    """Remove the model file a Gymnasium-Robotics maze environment leaves in the temp folder; returns ``env``.

    ``Maze.make_maze`` (``gymnasium_robotics/envs/maze/maze_v4.py`` L238-242, ``maze.py`` L152-156) writes
    the maze's MuJoCo model to ``<tempdir>/ant_maze<time>.xml`` (``point_maze`` too) and never deletes it.
    The file is read once, in the constructor (``MujocoEnv._initialize_simulation``:
    ``MjModel.from_xml_path``); ``reset``, ``step`` and ``render`` use the loaded model. So it goes as soon
    as the environment exists. Only a file directly in the temp folder is removed."""
    path = getattr(env.unwrapped, "tmp_xml_file_path", None)
    if isinstance(path, str) and path.endswith(".xml") and _same_dir(os.path.dirname(path), tempfile.gettempdir()):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    return env


@contextlib.contextmanager
def maze_files_private():
    """Within the block, the temp folder is a private one, removed after: for code offbench does not own that
    makes a maze environment and keeps neither it nor its model file (``minari.create_dataset_from_buffers`` with
    reference scores: ``gym.make(eval_env_spec)``, ``minari/utils.py`` ``get_dataset_metadata``). ``make_maze``
    writes beside a ``tempfile.TemporaryDirectory()``, so the file lands in the private folder. Single-threaded
    use only: ``tempfile.tempdir`` is process-wide."""
    old = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="offbench-maze-") as private:
        tempfile.tempdir = private
        try:
            yield
        finally:
            tempfile.tempdir = old


def _same_dir(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def reset_seed(stream: str, seed: int, *index: int) -> int:
    """The reset seed of one episode: a function of the run seed's *value* (not its position in the run)
    and the episode's index, hashed through ``numpy.random.SeedSequence`` so that no two (stream, seed,
    index) share a reset seed by construction (seeds 0-4 and 5-9 run separately get different starts; the
    same seed gets the same starts in any run; neighbouring seeds' episodes never collide)."""
    words = [zlib.crc32(stream.encode()), int(seed) & 0xFFFFFFFF, int(seed) >> 32, *(int(i) for i in index)]
    lo, hi = np.random.SeedSequence(words).generate_state(2, np.uint32)
    return (int(hi) << 32 | int(lo)) & ((1 << 63) - 1)


def goal_reached(env, radius: float):
    """D4RL's goal-reaching evaluation on a Gymnasium-Robotics maze (``d4rl/locomotion/goal_reaching_env.py``
    L42-47, the ``eval=True`` that every antmaze-*-v2 registers): sparse reward 1 within ``radius`` of the
    goal, and the episode ends there. Gymnasium-Robotics hard-codes 0.45 and, with ``continuing_task``,
    never ends an episode at the goal; the wrapper recomputes both from the observation's
    ``achieved_goal`` / ``desired_goal``."""
    return _goal_reached_class()(env, float(radius))


@functools.cache
def _goal_reached_class():
    import gymnasium as gym

    class GoalReached(gym.Wrapper):
        def __init__(self, env, radius: float):
            super().__init__(env)
            self.goal_radius = radius

        def step(self, action):
            obs, _, term, trunc, info = self.env.step(action)
            dist = np.linalg.norm(np.asarray(obs["achieved_goal"]) - np.asarray(obs["desired_goal"]))
            hit = bool(dist <= self.goal_radius)
            return obs, float(hit), bool(term) or hit, bool(trunc), dict(info, success=hit)

    return GoalReached


def fixed_maze_goal(env, goal_xy, radius: float):
    """D4RL maze2d's evaluation on Gymnasium-Robotics' PointMaze: the goal is the goal cell's centre at every
    reset (D4RL ``d4rl/pointmaze/maze_model.py``: ``set_target`` at the map's goal location, no noise, where
    Gymnasium-Robotics adds U(-0.25, 0.25) m per reset), and the sparse reward is 1 within ``radius`` (D4RL: 0.5)
    of it; episodes continue past the goal, as D4RL's do."""
    return _fixed_goal_class()(env, tuple(float(v) for v in goal_xy), float(radius))


@functools.cache
def _fixed_goal_class():
    import gymnasium as gym

    class FixedGoal(gym.Wrapper):
        def __init__(self, env, goal_xy, radius):
            super().__init__(env)
            self.goal_xy, self.goal_radius = np.asarray(goal_xy, np.float64), radius

        def reset(self, **kwargs):
            obs, info = self.env.reset(**kwargs)
            self.env.unwrapped.goal = self.goal_xy.copy()
            self.env.unwrapped.update_target_site_pos()
            return dict(obs, desired_goal=self.goal_xy.copy()), info

        def step(self, action):
            obs, _, term, trunc, info = self.env.step(action)
            hit = bool(np.linalg.norm(np.asarray(obs["achieved_goal"]) - self.goal_xy) <= self.goal_radius)
            return obs, float(hit), bool(term), bool(trunc), dict(info, success=hit)

    return FixedGoal


@dataclasses.dataclass(frozen=True)
class EnvFactory:
    """A picklable environment factory (worker processes rebuild environments from it): a Minari env spec
    (JSON) when the dataset carries one, else ``env_id`` with ``env_kwargs``; ``goal_radius`` wraps the
    environment with :func:`goal_reached`."""

    env_id: str | None = None
    env_kwargs: dict | None = None
    max_episode_steps: int | None = None
    spec_json: str | None = None
    goal_radius: float | None = None
    fixed_goal: tuple | None = None  # D4RL maze2d: (x, y, radius) of :func:`fixed_maze_goal`

    def __call__(self):
        env = (
            make_env_from_spec(self.spec_json)
            if self.spec_json
            else make_env(self.env_id, self.env_kwargs, self.max_episode_steps)
        )
        if self.fixed_goal is not None:
            env = fixed_maze_goal(env, self.fixed_goal[:2], self.fixed_goal[2])
        return goal_reached(env, self.goal_radius) if self.goal_radius is not None else env


def env_description(spec_json: str) -> dict:
    try:
        d = json.loads(spec_json)
        return {"env_id": d.get("id"), "max_episode_steps": d.get("max_episode_steps")}
    except Exception:
        return {}


class ObsAdapter:
    """Turns an environment observation (array or dict) into the flat vector the dataset stores."""

    def __init__(self, obs_keys=None, mean=None, std=None):
        self.obs_keys = list(obs_keys) if obs_keys else None
        self.mean, self.std = mean, std

    def raw(self, obs) -> np.ndarray:
        if isinstance(obs, dict):
            return _flat_nested(obs, self.obs_keys)
        return np.asarray(obs, np.float32).reshape(-1)

    def __call__(self, obs) -> np.ndarray:
        x = self.raw(obs)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.astype(np.float32)


def obs_key_parts(obs: dict, keys) -> list[tuple]:
    """``keys`` (a suite's ``obs_keys``; all of ``obs``'s, sorted, when None) as ``(key, columns)`` pairs checked
    against ``obs``: a key may be a ``(key, columns)`` pair, those columns of the key's flat array
    (``Task.rebuilt_obs_keys``); a plain key's columns are None (all). One parse for a batch
    (:func:`offbench.data.loaders.flatten_observation`) and for one observation (:class:`ObsAdapter`)."""
    ks = [(k, None) if isinstance(k, str) else (k[0], list(k[1])) for k in (keys if keys else sorted(obs))]
    missing = [k for k, _ in ks if k not in obs]
    if missing:
        raise OffbenchError(f"observation has no keys {missing} (it has {sorted(obs)}); fix the suite's obs_keys")
    return ks


def _flat_nested(obs: dict, keys):
    """One observation dict flattened as :func:`offbench.data.loaders.flatten_observation` flattens a batch."""
    parts = []
    for k, cols in obs_key_parts(obs, keys):
        v = obs[k]
        v = _flat_nested(v, None) if isinstance(v, dict) else np.asarray(v, np.float32).reshape(-1)
        parts.append(v if cols is None else v[cols])
    return np.concatenate(parts)


def quiet_mujoco() -> None:
    """MuJoCo writes its warnings to ``MUJOCO_LOG.TXT`` in the current folder unless a warning handler is set:
    route them to Python's warnings (each message once) so nothing lands in the user's folder."""
    try:
        import mujoco
    except ImportError:  # pragma: no cover - a dependency
        return
    import warnings

    seen: set = set()

    def handler(msg):
        text = msg.decode() if isinstance(msg, bytes) else str(msg)
        if text not in seen:
            seen.add(text)
            warnings.warn(f"MuJoCo: {text}", RuntimeWarning, stacklevel=1)

    mujoco.set_mju_user_warning(handler)
