"""A goal-directed Ant for the AntMaze rebuilds: the forward-running Ant expert, steered.

The expert (``policies/ant-expert.npz``, format ``offbench-mlp-policy/1``, trained on Ant-v2 with contact
forces, 111-D input) only ever learnt to run toward world +x. It is steered toward maze waypoints by
changing what it *sees*, never its weights:

* **leg relabelling** -- the Ant is symmetric under 90 degree turns about its torso axis. Calling real
  leg ``j+k`` "virtual leg ``j``" (ankle angles sign-corrected, contact-force rows permuted alike, torso
  quaternion ``q (x) qz(90k)``, body-frame angular velocity ``Rz(-90k) w``) describes the *same* physical
  state with a torso turned by ``90k`` degrees, so the expert runs off in another direction without the
  torso turning. ``k`` is chosen with hysteresis; actions are blended over a few steps after a switch.
* **frame rotation** -- the whole world is presented rotated about z (``q' = qz(rot) (x) q``, linear
  velocity and both halves of every contact-force row rotated, body-frame angular velocity unchanged), so
  the expert corrects its heading toward the wanted direction; the perceived error is clipped to +-45 deg.
* **speed control** -- a desired velocity toward the aim point (2 m/s, slower near the goal); the expert
  is steered along ``v_des + gain (v_des - v)``, so overspeed turns into braking.
* **per-episode perturbation** (recipe v3) -- ``perturb(heading_bias_deg, speed_factor)``: every desired
  heading is turned by a fixed bias and the desired speed scaled by a fixed factor until the next call.
* **planner** -- breadth-first search over the maze grid (4-connected), re-planned when the cell changes;
  the aim point lies 2 m ahead along the path through cell centres (the goal itself in the last cell).

Conventions (MuJoCo): quaternions are (w, x, y, z) body->world; ``qvel[0:3]`` is in the world frame,
``qvel[3:6]`` in the body frame; ``cfrc_ext`` rows are (torque, force) in world orientation.
Bodies: 0 world, 1 torso, leg ``l`` (0..3 = legs 1..4, at 45, 135, 225, 315 deg) = bodies ``2+3l..4+3l``.
Joints (qpos[7:15]): hip_1 ankle_1 hip_2 ankle_2 hip_3 ankle_3 hip_4 ankle_4. Actuators: h4 a4 h1 a1 h2 a2 h3 a3.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np

from offbench.errors import OffbenchError

POLICY_FILE = "policies/ant-expert.npz"

# ankle angle sign of each real leg (joint ranges: ankles 1 and 4 positive, 2 and 3 negative)
LEG_SIGN = np.array([1.0, -1.0, -1.0, 1.0])
# expert input: qpos[2:15] (13), qvel[0:14] (14), clip(cfrc_ext[0:14], -1, 1) (84)
OBS_DIM = 111
N_BODIES = 14

# unsteered behaviour of the expert (measured): runs toward world heading -3.5 deg with torso yaw +36 deg
RUN_DIR_DEG = -3.5
RUN_YAW_DEG = 36.0


# --------------------------------------------------------------------------------------------------
# the expert (an offbench-mlp-policy/1 file, run by offbench.recipes.policy)


class PinnedPolicy:
    """The deterministic action of an ``offbench-mlp-policy/1`` policy with its dead inputs pinned.

    Inputs whose training scale was tiny (< ``pin_below``) are pinned to their training value (the
    normalisation shift): for the Ant expert these are the world body's and the thighs' contact forces,
    which were always zero in training; any contact there would otherwise be amplified a million-fold.
    """

    def __init__(self, policy, pin_below: float = 1e-4):
        self.policy = policy
        self.pinned = np.asarray(policy.obs_scale) < pin_below

    @property
    def obs_dim(self) -> int:
        return int(self.policy.obs_dim)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.array(obs, np.float64)
        x[..., self.pinned] = self.policy.obs_shift[self.pinned]
        return self.policy.mean(x)


def load_expert(behavior_dir: str | Path) -> PinnedPolicy:
    """``policies/ant-expert.npz`` of the behaviour folder, dead inputs pinned."""
    from offbench.recipes.policy import load_policy

    return PinnedPolicy(load_policy(behavior_dir, Path(POLICY_FILE).name))


# --------------------------------------------------------------------------------------------------
# rotations (quaternions w, x, y, z)


def quat_mul(a, b) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def qz(angle: float) -> np.ndarray:
    return np.array([math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)])


def rz(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_of(q) -> float:
    w, x, y, z = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def up_z(q) -> float:
    """World z component of the torso's z axis (1 upright, -1 upside down)."""
    _, x, y, _ = q
    return 1 - 2 * (x * x + y * y)


def wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


# --------------------------------------------------------------------------------------------------
# the two symmetries


def _leg_maps(k: int):
    k = int(k) % 4
    real = [(j + k) % 4 for j in range(4)]  # virtual leg j = real leg real[j]
    sign = np.array([LEG_SIGN[j] * LEG_SIGN[real[j]] for j in range(4)])
    return real, sign


def relabel_state(qpos, qvel, cfrc, k: int):
    """The same physical state described with virtual leg ``j`` = real leg ``j + k`` (torso frame turned
    by ``90k`` degrees). ``qpos`` (15,), ``qvel`` (14,), ``cfrc`` (14, 6); returns new arrays (the
    quaternion with w >= 0)."""
    k = int(k) % 4
    qpos, qvel, cfrc = np.array(qpos, np.float64), np.array(qvel, np.float64), np.array(cfrc, np.float64)
    if k == 0:
        return qpos, qvel, cfrc
    real, sign = _leg_maps(k)
    p, v, c = qpos.copy(), qvel.copy(), cfrc.copy()
    phi = k * math.pi / 2
    q = quat_mul(qpos[3:7], qz(phi))
    p[3:7] = -q if q[0] < 0 else q  # q and -q are the same rotation; the expert only saw w >= 0
    v[3:6] = rz(-phi) @ qvel[3:6]
    for j, r in enumerate(real):
        p[7 + 2 * j], p[8 + 2 * j] = qpos[7 + 2 * r], sign[j] * qpos[8 + 2 * r]
        v[6 + 2 * j], v[7 + 2 * j] = qvel[6 + 2 * r], sign[j] * qvel[7 + 2 * r]
        c[2 + 3 * j : 5 + 3 * j] = cfrc[2 + 3 * r : 5 + 3 * r]
    return p, v, c


def _actuator_of(leg: int) -> tuple[int, int]:
    """(hip, ankle) actuator indices of leg ``leg`` (0..3) in the order h4 a4 h1 a1 h2 a2 h3 a3."""
    i = 2 * ((leg + 1) % 4)
    return i, i + 1


def unrelabel_action(action_virtual, k: int) -> np.ndarray:
    """A virtual-leg action (actuator order) as the real action of the same torques."""
    k = int(k) % 4
    a = np.asarray(action_virtual, np.float64)
    if k == 0:
        return a.copy()
    real, sign = _leg_maps(k)
    out = np.empty_like(a)
    for j, r in enumerate(real):
        hv, av = _actuator_of(j)
        hr, ar = _actuator_of(r)
        out[..., hr] = a[..., hv]
        out[..., ar] = sign[j] * a[..., av]
    return out


def rotate_state(qpos, qvel, cfrc, rot: float):
    """The state with the world turned by ``rot`` about z: position, torso quaternion, world-frame linear
    velocity and both halves of every contact-force row rotated; body-frame quantities unchanged."""
    R = rz(rot)
    p, v, c = np.array(qpos, np.float64), np.array(qvel, np.float64), np.array(cfrc, np.float64)
    p[0:3] = R @ p[0:3]
    q = quat_mul(qz(rot), p[3:7])
    p[3:7] = -q if q[0] < 0 else q  # the expert never saw w < 0 (q and -q are the same rotation)
    v[0:3] = R @ v[0:3]
    c[:, 0:3] = c[:, 0:3] @ R.T
    c[:, 3:6] = c[:, 3:6] @ R.T
    return p, v, c


def expert_input(qpos, qvel, cfrc) -> np.ndarray:
    """The 111-D input of the Ant expert (Ant-v4 with contact forces)."""
    return np.concatenate(
        [np.asarray(qpos)[2:15], np.asarray(qvel)[0:14], np.clip(np.asarray(cfrc)[:N_BODIES], -1.0, 1.0).reshape(-1)]
    )


def mj_state(data):
    """(qpos[:15], qvel[:14], cfrc_ext[:14]) of the Ant's MuJoCo data."""
    return np.array(data.qpos[:15]), np.array(data.qvel[:14]), np.array(data.cfrc_ext[:N_BODIES])


# --------------------------------------------------------------------------------------------------
# the maze planner


class MazeGrid:
    """The maze as a grid of cells (row, col); 1 is a wall, anything else free."""

    def __init__(self, maze_map, scaling: float = 4.0):
        self.free = np.array([[c != 1 for c in row] for row in maze_map], bool)
        self.rows, self.cols = self.free.shape
        self.scaling = float(scaling)
        self.x_center = self.cols / 2 * self.scaling
        self.y_center = self.rows / 2 * self.scaling

    def cell_xy(self, cell) -> np.ndarray:
        r, c = cell
        return np.array([(c + 0.5) * self.scaling - self.x_center, self.y_center - (r + 0.5) * self.scaling])

    def cell_of(self, xy) -> tuple[int, int]:
        r = int(math.floor((self.y_center - xy[1]) / self.scaling))
        c = int(math.floor((xy[0] + self.x_center) / self.scaling))
        r, c = min(max(r, 0), self.rows - 1), min(max(c, 0), self.cols - 1)
        if self.free[r, c]:
            return r, c
        # inside a wall cell (only possible near its boundary): the nearest free cell
        best = min(self.free_cells(), key=lambda rc: float(np.sum((self.cell_xy(rc) - xy) ** 2)))
        return best

    def free_cells(self) -> list[tuple[int, int]]:
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(self.free))]

    def path(self, start, goal) -> list[tuple[int, int]]:
        """Shortest 4-connected path of cells from ``start`` to ``goal`` (both included)."""
        start, goal = tuple(start), tuple(goal)
        prev = {start: None}
        queue = collections.deque([start])
        while queue:
            cur = queue.popleft()
            if cur == goal:
                break
            r, c = cur
            for nxt in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= nxt[0] < self.rows and 0 <= nxt[1] < self.cols and self.free[nxt] and nxt not in prev:
                    prev[nxt] = cur
                    queue.append(nxt)
        if goal not in prev:
            raise OffbenchError(f"no path from cell {start} to cell {goal} in this maze")
        out = [goal]
        while prev[out[-1]] is not None:
            out.append(prev[out[-1]])
        return out[::-1]


def point_along(points: list, distance: float) -> np.ndarray:
    """The point ``distance`` along the polyline ``points`` (its end when shorter)."""
    for a, b in zip(points[:-1], points[1:]):
        seg = float(np.linalg.norm(b - a))
        if seg >= distance and seg > 0:
            return a + (b - a) * (distance / seg)
        distance -= seg
    return np.asarray(points[-1], np.float64)


# --------------------------------------------------------------------------------------------------
# the steered Ant


class SteeredAnt:
    """Drives the Ant of an AntMaze environment to a goal position (``act(data, goal) -> action``).

    ``data`` is the Ant's MuJoCo data (``env.unwrapped.ant_env.data``); the action is the deterministic
    one (unclipped, unnoised: D4RL's recipe adds N(0, 0.2) noise and clips outside).
    """

    def __init__(
        self,
        policy: PinnedPolicy,
        maze_map,
        scaling: float = 4.0,
        *,
        speed: float = 2.0,
        min_speed: float = 0.7,
        speed_gain: float = 1.0,
        ema: float = 0.3,
        lookahead: float = 2.0,
        max_error_deg: float = 45.0,
        hysteresis_deg: float = 15.0,
        blend_steps: int = 10,
    ):
        if policy.obs_dim != OBS_DIM:
            raise OffbenchError(
                f"the Ant expert must take {OBS_DIM} inputs (Ant-v4 with contact forces); "
                f"this policy takes {policy.obs_dim}"
            )
        self.policy = policy
        self.grid = MazeGrid(maze_map, scaling)
        self.speed, self.min_speed, self.speed_gain = speed, min_speed, speed_gain
        self.ema, self.lookahead = ema, lookahead
        self.max_error = math.radians(max_error_deg)
        self.hysteresis = math.radians(hysteresis_deg)
        self.blend_steps = int(blend_steps)
        self.heading_bias, self.speed_factor = 0.0, 1.0
        self.reset()

    def perturb(self, heading_bias_deg: float = 0.0, speed_factor: float = 1.0):
        """A persistent perturbation (kept by :meth:`reset`): desired heading + bias, desired speed x factor."""
        self.heading_bias, self.speed_factor = math.radians(heading_bias_deg), float(speed_factor)

    def reset(self):
        self.k = None
        self.prev_k = None
        self.blend = 0
        self.vel = None
        self._cell = None
        self._goal_cell = None
        self._path = None
        self.switches = 0

    # the pieces, each usable on its own (tests) -------------------------------------------------------
    def aim_point(self, pos, goal) -> np.ndarray:
        cell, goal_cell = self.grid.cell_of(pos), self.grid.cell_of(goal)
        if cell != self._cell or goal_cell != self._goal_cell or self._path is None:
            self._path = self.grid.path(cell, goal_cell)
            self._cell, self._goal_cell = cell, goal_cell
        pts = (
            [np.asarray(pos, np.float64)]
            + [self.grid.cell_xy(c) for c in self._path[1:-1]]
            + [np.asarray(goal, np.float64)]
        )
        self._remaining = float(sum(np.linalg.norm(b - a) for a, b in zip(pts[:-1], pts[1:])))
        return point_along(pts, self.lookahead)

    def desired_heading(self, pos, vel, goal) -> float:
        aim = self.aim_point(pos, goal)
        d = aim - pos
        n = float(np.linalg.norm(d))
        direction = d / n if n > 1e-9 else np.zeros(2)
        speed = self.speed_factor * min(self.speed, max(self.min_speed, self._remaining + 0.5))
        c, s = math.cos(self.heading_bias), math.sin(self.heading_bias)
        v_des = speed * np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])
        u = v_des + self.speed_gain * (v_des - vel)
        return math.atan2(u[1], u[0])

    def virtual_input(self, qpos, qvel, cfrc, k: int, psi: float) -> np.ndarray:
        """The expert's input for labelling ``k`` steering toward world heading ``psi``."""
        p, v, c = relabel_state(qpos, qvel, cfrc, k)
        yaw = yaw_of(p[3:7])
        run_dir = yaw + math.radians(RUN_DIR_DEG - RUN_YAW_DEG)  # where this labelling runs now
        err = float(np.clip(wrap(run_dir - psi), -self.max_error, self.max_error))
        # present the world turned so that the expert sees a heading error of ``err`` from its +x run
        rot = math.radians(RUN_DIR_DEG) - run_dir + err
        return expert_input(*rotate_state(p, v, c, rot))

    def choose_k(self, yaw: float, psi: float) -> int:
        off = math.radians(RUN_DIR_DEG - RUN_YAW_DEG)
        errs = [abs(wrap(yaw + k * math.pi / 2 + off - psi)) for k in range(4)]
        best = int(np.argmin(errs))
        if self.k is None:
            return best
        if best != self.k and errs[best] < errs[self.k] - self.hysteresis:
            return best
        return self.k

    def act(self, data, goal) -> np.ndarray:
        qpos, qvel, cfrc = mj_state(data)
        pos = qpos[0:2]
        v = qvel[0:2]
        self.vel = v.copy() if self.vel is None else (1 - self.ema) * self.vel + self.ema * v
        psi = self.desired_heading(pos, self.vel, np.asarray(goal, np.float64))
        k = self.choose_k(yaw_of(qpos[3:7]), psi)
        if self.k is not None and k != self.k:
            self.prev_k, self.blend = self.k, self.blend_steps
            self.switches += 1
        self.k = k
        a = unrelabel_action(self.policy(self.virtual_input(qpos, qvel, cfrc, k, psi)), k)
        if self.blend > 0 and self.prev_k is not None:
            w = self.blend / (self.blend_steps + 1)
            a_old = unrelabel_action(self.policy(self.virtual_input(qpos, qvel, cfrc, self.prev_k, psi)), self.prev_k)
            a = w * a_old + (1 - w) * a
            self.blend -= 1
        return a


def is_flipped(data, threshold: float = 0.0) -> bool:
    """The torso is upside down (its z axis points below the horizon): the expert cannot recover."""
    return up_z(np.asarray(data.qpos[3:7])) < threshold
