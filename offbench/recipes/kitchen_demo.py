"""A scripted demonstrator for ``FrankaKitchen-v1`` (gymnasium-robotics): one motion primitive per subtask.

An action's 9 values in [-1, 1] are scaled to 2 rad/s and applied as a *position target* ``ctrl = observed qpos +
2 a dt`` (dt = 0.08 s) to position servos (gain kp) on damped joints without gravity compensation (the env's code).
So the demonstrator plans an end-effector motion toward the model's sites, turns it into joint velocities (damped
least squares IK, a null-space pull to a comfortable posture, joints frozen at their limits) and compensates the
servo: target ``q + qdot (dt + damping / kp) + qfrc_bias / kp`` relative to the *observed* (noisy) qpos. Primitives
are generators of actions (``kitchen_rollout.run_tasks``); the data holds only observations (docs/kitchen.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np

SUBTASKS = ("microwave", "kettle", "bottom burner", "top burner", "light switch", "slide cabinet", "hinge cabinet")
ARM = 7
DT = 0.08
# The end-effector's default orientation (columns = site axes in world): z (approach) points into the
# kitchen (+y), y (finger opening direction) along +x, x up.
R_FORWARD = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
# Forward, rolled 90 degrees so the fingers open vertically (kettle handle: pinched from above and below).
KETTLE_ROT = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
# Tunables of the primitives (values measured with scripts/measure_kitchen.py, see docs/kitchen.md).
KETTLE_DY = 0.02  # grasp 2 cm past the handle bar's axis (the palm pushes it)
KETTLE_LIFT = 0.06  # carry height
KETTLE_V = 0.25  # carry speed (m/s): slow enough for the kettle to hang upright
KETTLE_BACK = 0.25  # back out this far before moving on (clear of the knob panel above)
MICROWAVE_GOAL = -0.85  # door angle to open to (the task needs < -0.45)
RETREAT_STEPS = 4  # short retreat after a subtask (the next approach does the rest)
LIGHT_STEPS = 25
# The slide cabinet once the hinge door is open (> HINGE_AJAR rad; its handle stands 20 cm in front of the slide's):
# come in yawed SLIDE_YAW rad via a point SLIDE_VIA m out; 60/72 slides (docs/kitchen.md "Session 12 of wave 3")
HINGE_AJAR, SLIDE_YAW, SLIDE_VIA = 0.5, 0.4, 0.3
# the env's start posture: a comfortable one for the forward-pointing hand most primitives use
Q_HOME = np.array([0.15, -1.77, 1.84, -2.48, 0.26, 0.71, 1.6])
NULL_GAIN = 0.5  # null-space pull toward the posture
NEUTRAL_GAIN = 3.0  # ... while going back to neutral between subtasks
NEUTRAL_SKIP = 0.8  # no neutral move when every arm joint is within this of Q_HOME (rad)
NEUTRAL_POS = np.array([-0.35, 0.3, 2.1])
# fmt: off
SITES = {"microwave": "microhandle_site", "kettle": "kettle_site", "bottom burner": "knob2_site",  # each one's handle
         "top burner": "knob4_site", "light switch": "light_site", "slide cabinet": "slide_site",
         "hinge cabinet": "hinge_site2"}
# fmt: on
VMAX = 1.0  # end-effector speed limit (m/s)
# A candidate (0: off): a reach down a funnel, a law of the hand's position: its target is on the approach line, FUNNEL
# x the hand's distance from it out from the grasp. 0: a waypoint, then a move in. docs/kitchen.md "Session 7"
FUNNEL, FUNNEL_SKIP, SETTLE = 0.0, ("kettle",), 2  # SETTLE: steps at the grasp before the fingers close
PUSH_FADE = 0.03  # a DART push fades within this of its target (m); v7 (0.1 before), on BC: docs/kitchen.md "Recipe v7"
DLS_DAMPING = 0.05  # lambda of the damped least squares J^T (J J^T + lambda^2 I)^-1 (m; Nakamura & Hanafusa 1986)
KPOS = 8.0  # position gain (1/s)
LIMIT_MARGIN = 0.25  # joint-limit avoidance starts this far from a limit (rad)
LIMIT_GAIN = 2.0


@dataclasses.dataclass(frozen=True)
class Style:
    """One demo's persistent variation (recipe v3), differing between demos through the same state, so the
    data's mean action averages intentions as human operators' demos do; default none (version 2's). Drawn by
    ``offbench.recipes.kitchen.draw_style``, which cites each range."""

    time_scale: dict = dataclasses.field(default_factory=dict)  # subtask -> duration factor (speed 1/f)
    approach: dict = dataclasses.field(default_factory=dict)  # subtask -> offset of the pre-grasp point (m)
    grasp_shift: dict = dataclasses.field(default_factory=dict)  # subtask -> grasp point offset (m)
    fumble: dict = dataclasses.field(default_factory=dict)  # subtask -> grasp offset of a missed first try
    ou_sigma: float = 0.0  # stationary std of the end-effector target's OU perturbation (m)
    ou_tau: float = 10.0  # its correlation time (steps)


def rot(axis, angle) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


class Demonstrator:
    """IK + servo-compensated controller over a ``KitchenEnv`` (the unwrapped env)."""

    def __init__(self, env, rng: np.random.Generator | None = None, speed: float = 1.0, style: Style | None = None):
        import mujoco

        self.mj = mujoco
        self.env = env.unwrapped
        self.robot = self.env.robot_env
        self.m, self.d = self.env.model, self.env.data
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.speed = self.base_speed = speed
        self.style = style if style is not None else Style()
        self.task = ""  # the primitive running (set by primitive)
        self.ou = np.zeros(3)  # the current OU offset of the end-effector target
        self.push_gain = 0.0  # how much a DART push (kitchen_rollout.push) may act, set by each action
        self.site = self.m.site("end_effector").id
        self.kp = self.m.actuator_gainprm[:9, 0].copy()
        self.damp = self.m.dof_damping[:9].copy()
        self.lo, self.hi = self.m.jnt_range[:ARM, 0].copy(), self.m.jnt_range[:ARM, 1].copy()
        self.jacp, self.jacr = np.zeros((3, self.m.nv)), np.zeros((3, self.m.nv))
        self.posture = Q_HOME.copy()
        self.null_gain = NULL_GAIN

    # ---------------------------------------------------------------- state
    def ee(self):
        return self.d.site_xpos[self.site].copy(), self.d.site_xmat[self.site].reshape(3, 3).copy()

    def site_pos(self, name):
        return self.d.site_xpos[self.m.site(name).id].copy()

    def joint(self, name):
        j = self.m.joint(name)
        return j.id, float(self.d.qpos[self.m.jnt_qposadr[j.id]])

    def joint_axis(self, name):
        jid = self.m.joint(name).id
        return self.d.xanchor[jid].copy(), self.d.xaxis[jid].copy()

    # ---------------------------------------------------------------- control
    def action(
        self,
        target_pos,
        target_rot=None,
        grip: float = 1.0,
        vmax: float | None = None,
        wmax: float = 2.0,
        kpos: float | None = None,
        krot: float = 4.0,
    ) -> np.ndarray:
        """The env action moving the end effector toward ``target_pos``/``target_rot``; ``grip`` +1 opens,
        -1 closes the fingers."""
        mj = self.mj
        vmax = VMAX if vmax is None else vmax
        kpos = KPOS if kpos is None else kpos
        p, r = self.ee()
        dist = float(np.linalg.norm(np.asarray(target_pos) - p))
        self.push_gain = 0.0 if grip < 0 else min(1.0, dist / PUSH_FADE)  # none while holding; fades near target
        target_pos = np.asarray(target_pos) + self._ou_step(dist)
        v = kpos * min(self.speed, 1.5) * (target_pos - p)  # kpos·dt stays < 1 (no overshoot)
        n = np.linalg.norm(v)
        vm = vmax * self.speed
        if n > vm:
            v *= vm / n
        if target_rot is not None:
            w = 0.5 * sum(np.cross(r[:, i], target_rot[:, i]) for i in range(3)) * krot
            nw = np.linalg.norm(w)
            if nw > wmax:
                w *= wmax / nw
            err = np.concatenate([v, w])
        else:
            err = v
        mj.mj_jacSite(self.m, self.d, self.jacp, self.jacr, self.site)
        jac = np.vstack([self.jacp[:, :ARM], self.jacr[:, :ARM]]) if target_rot is not None else self.jacp[:, :ARM]
        q = self.d.qpos[:ARM].copy()
        free = np.ones(ARM, bool)
        lam2 = DLS_DAMPING**2
        for _ in range(3):
            jf = jac * free
            jjt = jf @ jf.T + lam2 * np.eye(len(err))
            jpinv = jf.T @ np.linalg.inv(jjt)
            dq = jpinv @ err
            # null space: toward a comfortable posture and away from the joint limits
            margin = LIMIT_MARGIN
            pull = self.null_gain * (self.posture - q)
            pull += np.where(q < self.lo + margin, LIMIT_GAIN * (self.lo + margin - q), 0.0)
            pull += np.where(q > self.hi - margin, LIMIT_GAIN * (self.hi - margin - q), 0.0)
            dq += (np.eye(ARM) - jpinv @ jf) @ (pull * free)
            nxt = q + dq * DT
            bad = free & (((nxt < self.lo + 0.02) & (dq < 0)) | ((nxt > self.hi - 0.02) & (dq > 0)))
            if not bad.any():
                break
            free &= ~bad
        dq = dq * free
        mx = np.max(np.abs(dq) / 1.5)
        if mx > 1:
            dq /= mx
        ctrl = q + self.servo(dq) + self.d.qfrc_bias[:ARM] / self.kp[:ARM]
        a = np.empty(9)
        a[:ARM] = (ctrl - self.robot._last_robot_qpos[:ARM]) / (2 * DT)
        a[ARM:] = grip
        return np.clip(a, -1.0, 1.0)

    def servo(self, dq) -> np.ndarray:
        """The servo-target change moving the arm's joints at ``dq`` (rad/s) for a step (an action: over 2 DT)."""
        return dq * (DT + self.damp[:ARM] / self.kp[:ARM])

    def _ou_step(self, dist: float) -> np.ndarray:
        """Advance the style's Ornstein-Uhlenbeck offset by one step; it fades within 10 cm of the target
        (a hand is steadier when it closes in on a handle)."""
        st = self.style
        if st.ou_sigma <= 0:
            return np.zeros(3)
        a = 1.0 / st.ou_tau
        self.ou = (1 - a) * self.ou + st.ou_sigma * np.sqrt(2 * a - a * a) * self.rng.normal(0.0, 1.0, 3)
        return self.ou * min(1.0, dist / 0.1)

    def reach(self, task, grasp, pre, r0, tol=0.03, steps=50, gtol=0.015, gsteps=25):
        """Approach ``grasp`` from ``grasp + pre`` (shifted by the style's approach offset) down the :data:`FUNNEL`
        or via that point; with the style's fumble, first close the fingers beside the handle, open and back off."""
        pre = np.asarray(pre) + self.style.approach.get(task, 0.0)
        miss = self.style.fumble.get(task)
        if miss is not None:
            yield from self.move(grasp + pre, r0, 1.0, tol=tol, max_steps=steps)
            yield from self.move(grasp + miss, r0, 1.0, tol=gtol, max_steps=gsteps)
            yield from self.hold(grasp + miss, r0, -1.0, steps=3)
            yield from self.hold(grasp + miss, r0, 1.0, steps=2)
            yield from self.move(grasp + 0.5 * pre, r0, 1.0, tol=tol, max_steps=10)
        if FUNNEL <= 0 or self.task in FUNNEL_SKIP:  # two waypoints: the pre-grasp point, then the grasp
            yield from self.move(grasp + pre, r0, 1.0, tol=tol, max_steps=steps)
            yield from self.move(grasp, r0, 1.0, tol=gtol, max_steps=gsteps)
            return
        u = pre / (depth := float(np.linalg.norm(pre)))  # the approach line's direction, the pre-grasp distance

        def funnel():  # on the approach line, FUNNEL x the hand's distance from that line out from the grasp
            d = self.ee()[0] - grasp
            return grasp + u * min(depth, FUNNEL * float(np.linalg.norm(d - (d @ u) * u)))

        yield from self.move(funnel, r0, 1.0, tol=gtol, max_steps=steps + gsteps, goal=grasp)
        yield from self.hold(grasp, r0, 1.0, steps=SETTLE)  # fingers still open while the hand comes to rest

    # ---------------------------------------------------------------- motion generators
    def move(self, target, rot=None, grip=1.0, tol=0.015, rtol=0.15, max_steps=60, min_steps=0, stall=4, **kw):
        """Yield actions until the end effector is within ``tol`` of ``target`` (a point or a callable), or
        it stops getting closer (blocked), or ``max_steps``."""
        yield from self._move(target, rot, grip, tol, rtol, max_steps, min_steps, stall, [], **kw)

    def _move(self, target, rot, grip, tol, rtol, max_steps, min_steps, stall, hist, goal=None, **kw):
        for i in range(max_steps):
            tp = target() if callable(target) else target
            end = tp if goal is None else goal  # where the move ends (a funnel aims elsewhere on its way there)
            p, r = self.ee()
            dist = np.linalg.norm(end - p) + (0.1 * np.linalg.norm(r - rot) if rot is not None else 0.0)
            hist.append(dist)
            ok = np.linalg.norm(end - p) < tol
            if ok and rot is not None:
                ok = np.linalg.norm(r - rot) < rtol
            if ok and i >= min_steps:
                return
            if len(hist) > stall and hist[-stall - 1] - dist < 0.002 and i >= min_steps and (dist < 0.08 or i > 25):
                return  # blocked near the target (contact), or stuck
            yield self.action(tp, rot, grip, **kw)

    def hold(self, target, rot=None, grip=1.0, steps=3, **kw):
        for _ in range(steps):
            yield self.action(target() if callable(target) else target, rot, grip, **kw)

    def turn(self, joint, goal, grasp_offset, rot0, grip=-1.0, step=0.12, max_steps=60, lead=1.0, stall=6, **kw):
        """Carry the grasp around ``joint``'s axis until its value passes ``goal``: the end-effector target is
        the grasp point rotated (or, for a slide joint, translated) a little ahead of the joint's value."""
        jid = self.m.joint(joint).id
        adr = self.m.jnt_qposadr[jid]
        sliding = self.m.jnt_type[jid] == self.mj.mjtJoint.mjJNT_SLIDE
        q0 = float(self.d.qpos[adr])
        anchor, axis = self.joint_axis(joint)
        p0 = self.ee()[0] if grasp_offset is None else grasp_offset
        sign = np.sign(goal - q0)
        hist = []
        for _ in range(max_steps):
            q = float(self.d.qpos[adr])
            hist.append(q)
            if (q - goal) * sign >= 0:
                return
            if len(hist) > stall and (q - hist[-stall - 1]) * sign < 0.004 * stall:
                return  # stalled (slipped off or out of reach)
            qt = q + sign * step * lead * self.speed
            if (qt - goal) * sign > 0:
                qt = goal + sign * 0.02
            if sliding:
                tp = p0 + axis * (qt - q0)
                tr = rot0
            else:
                rr = rot(axis, qt - q0)
                tp = anchor + rr @ (p0 - anchor)
                tr = rr @ rot0 if rot0 is not None else None
            yield self.action(tp, tr, grip, **kw)

    # ---------------------------------------------------------------- primitives (one per subtask)
    def jitter(self, scale=0.005):
        return self.rng.uniform(-scale, scale, 3)

    def shift(self, task):
        """The style's grasp point offset for ``task`` (another place on the handle)."""
        return np.asarray(self.style.grasp_shift.get(task, np.zeros(3)), float)

    def microwave(self):
        for _attempt in range(3):  # the handle can slip out of the weak grip: grasp it again where it is
            q = self.joint("microwave")[1]
            anchor, axis = self.joint_axis("microwave")
            r0 = rot(axis, q) @ R_FORWARD  # hand facing the door as it is now
            grasp = self.site_pos("microhandle_site") - 0.01 * r0[:, 2] + self.jitter() + self.shift("microwave")
            yield from self.reach("microwave" if _attempt == 0 else "", grasp, -0.12 * r0[:, 2], r0)
            yield from self.hold(grasp, r0, -1.0, steps=3)
            # carry the handle round the hinge, position only (the wrist follows the door by itself)
            yield from self.turn("microwave", MICROWAVE_GOAL, grasp, None, grip=-1.0, step=0.15, max_steps=40)
            p, r = self.ee()
            yield from self.hold(p, None, 1.0, steps=2)
            if self.joint("microwave")[1] < MICROWAVE_GOAL + 0.25:
                break
            yield from self.move(p - 0.08 * r[:, 2], None, 1.0, tol=0.03, max_steps=5)
        p = self.ee()[0]
        yield from self.move(p + np.array([0.0, -0.1, 0.0]), None, 1.0, tol=0.04, max_steps=RETREAT_STEPS)

    def _grasp_front_handle_and_open(self, task, site, joint, target, keep_orientation, step, max_steps, back, r0):
        """Approach a handle along ``r0``'s z axis, grasp it, carry it along its joint to ``target`` (keeping the
        hand's orientation for a slide, not for a hinge), release and back off by ``back`` metres."""
        grasp = self.site_pos(site) - 0.005 * r0[:, 2] + self.jitter() + self.shift(task)
        yield from self.reach(task, grasp, -0.12 * r0[:, 2], r0)
        yield from self.hold(grasp, r0, -1.0, steps=3)
        yield from self.turn(
            joint, target, grasp, r0 if keep_orientation else None, grip=-1.0, step=step, max_steps=max_steps
        )
        p = self.ee()[0]
        yield from self.hold(p, None, 1.0, steps=2)
        yield from self.move(p + np.array([0.0, -back, 0.0]), None, 1.0, tol=0.04, max_steps=10)

    def slide_cabinet(self):
        r0 = R_FORWARD
        if self.joint("right_hinge_cabinet")[1] > HINGE_AJAR:  # the wrist would hit the open hinge door's handle:
            r0 = rot([0.0, 0.0, 1.0], SLIDE_YAW) @ R_FORWARD  # come in from the front right, the hand yawed
            yield from self.move(self.site_pos("slide_site") - SLIDE_VIA * r0[:, 2], r0, 1.0, tol=0.04, max_steps=30)
        yield from self._grasp_front_handle_and_open(
            "slide cabinet", "slide_site", "slide_cabinet", 0.42, True, 0.06, 40, 0.12, r0
        )

    def light_switch(self):
        r0 = R_FORWARD
        for _attempt in range(2):  # if the lever was missed (a finger caught on it), back off and try again
            h = self.site_pos("light_site")
            # fingers open around the lever; the one on its +x side pushes it round its hinge toward -x
            grasp = h + self.jitter(0.004) + self.shift("light switch")
            task = "light switch" if _attempt == 0 else ""
            yield from self.reach(task, grasp, np.array([0.0, -0.1, 0.0]), r0, tol=0.02, gsteps=LIGHT_STEPS)
            yield from self.turn("light_switch", -0.72, grasp, r0, grip=1.0, step=0.3, max_steps=40)
            switched = self.joint("light_switch")[1] < -0.5  # (backing out drags the lever back a little)
            p = self.ee()[0]
            yield from self.move(p + np.array([0.0, -0.12, 0.0]), None, 1.0, tol=0.04, max_steps=RETREAT_STEPS)
            if switched:
                break

    def kettle(self):
        # the handle is a bar along x on top of the kettle: approach it from the front with the hand rolled
        # so the fingers pinch it from above and below; the palm then pushes it forward (no slip) and the
        # lower finger carries its weight
        h = self.site_pos("kettle_site")
        r0 = KETTLE_ROT
        grasp = h + np.array([0.0, KETTLE_DY, 0.0]) + self.jitter(0.004) + self.shift("kettle")
        yield from self.reach("kettle", grasp, np.array([0.0, -0.1, 0.0]), r0, gsteps=15)
        yield from self.hold(grasp, r0, -1.0, steps=3)
        shift = np.array([-0.23, 0.75, 1.62]) - self.d.xpos[self.m.body("kettle").id]
        # lift it clear and carry it slowly, so it hangs upright under the handle
        lift = np.array([0.0, 0.0, KETTLE_LIFT])
        yield from self.move(grasp + lift, r0, -1.0, tol=0.03, max_steps=10, vmax=0.3)
        yield from self.move(grasp + shift + lift, r0, -1.0, tol=0.02, max_steps=30, vmax=KETTLE_V)
        yield from self.move(grasp + shift + np.array([0.0, 0.0, 0.0]), r0, -1.0, tol=0.01, max_steps=10, vmax=0.3)
        p = self.ee()[0]
        yield from self.hold(p, r0, 1.0, steps=3)
        # back out well clear of the knob panel above before anything else
        yield from self.move(p + np.array([0.0, -KETTLE_BACK, 0.03]), r0, 1.0, tol=0.05, max_steps=10)

    def _knob(self, task, site, joint, goal):
        h = self.site_pos(site)
        r0 = R_FORWARD
        # the blade sticks out only ~1.5 cm in front of the knob's round base: grip its front edge
        grasp = h + np.array([0.0, -0.025, 0.0]) + self.jitter(0.003) + self.shift(task)
        yield from self.reach(task, grasp, np.array([0.0, -0.1, 0.0]), r0, gtol=0.02, gsteps=15)
        yield from self.hold(grasp, r0, -1.0, steps=3)
        yield from self.turn(joint, goal, grasp, r0, grip=-1.0, step=0.3, max_steps=40)
        p, r = self.ee()
        yield from self.hold(p, r, 1.0, steps=2)
        yield from self.move(p + np.array([0.0, -0.1, 0.0]), None, 1.0, tol=0.04, max_steps=10)

    def bottom_burner(self):
        yield from self._knob("bottom burner", "knob2_site", "knob_Joint_2", -1.0)

    def top_burner(self):
        yield from self._knob("top burner", "knob4_site", "knob_Joint_4", -1.0)

    def hinge_cabinet(self):
        yield from self._grasp_front_handle_and_open(
            "hinge cabinet", "hinge_site2", "right_hinge_cabinet", 1.5, False, 0.15, 60, 0.1, R_FORWARD
        )

    def neutral(self, max_steps=25):
        """Back to a neutral pose in front of the kitchen, pulling the arm's posture home: run before a subtask
        when an earlier one left the arm far from its home posture."""
        if np.max(np.abs(self.d.qpos[:ARM] - Q_HOME)) < NEUTRAL_SKIP:
            return
        self.null_gain = NEUTRAL_GAIN
        try:
            target = NEUTRAL_POS + self.jitter(0.03)  # (in front of the next handle instead: measured worse)
            for a in self._move(target, R_FORWARD, 1.0, 0.05, 0.15, max_steps, 0, 4, []):
                yield a
                if np.max(np.abs(self.d.qpos[:ARM] - Q_HOME)) < NEUTRAL_SKIP:
                    return
        finally:
            self.null_gain = NULL_GAIN

    def primitive(self, task: str):
        """The generator of actions for ``task`` (after a move back to neutral if the arm needs it)."""
        self.speed, self.task = self.base_speed / self.style.time_scale.get(task, 1.0), task
        yield from self.neutral()
        yield from getattr(self, task.replace(" ", "_"))()
