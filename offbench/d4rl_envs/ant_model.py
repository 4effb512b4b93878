"""D4RL's Ant in a maze as an MJCF string for modern MuJoCo (``mujoco`` 3.x), written from the facts of
D4RL's ``d4rl/locomotion/assets/ant.xml`` and ``d4rl/locomotion/maze_env.py`` (Farama-Foundation/D4RL,
commit 89141a6); every number below carries the line it was transcribed from.

What differs from the file, on purpose: ``compiler coordinate="local"`` (ant.xml:2) is gone from MuJoCo >= 2.3.3,
where local coordinates are the only kind; textures, materials and the light are left out (rendering only).
"""

from __future__ import annotations

# ant.xml:3: <option timestep="0.02" integrator="RK4"/>; ant.py:53: MujocoEnv.__init__(self, file_path, 5)
TIMESTEP = 0.02
FRAME_SKIP = 5
# ant.xml:72-79: eight motors, ctrlrange -30 30 (gear 1, MuJoCo's default), in this order
MOTORS = ("hip_4", "ankle_4", "hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3")
CTRL_LIMIT = 30.0
TORSO_Z = 0.75  # ant.xml:21 <body name="torso" pos="0 0 0.75">: qpos0 of the free joint
# ant.xml:24-67: (leg body, aux body, index k of hip_k/ankle_k, aux end (x, y), ankle axis, ankle range, geom name);
# every hip: axis 0 0 1, range -30 30; capsules of radius 0.08; the ankle capsule is twice the aux vector
LEGS = (
    ("front_left_leg", "aux_1", 1, (0.2, 0.2), "-1 1 0", "30 70", "left"),
    ("front_right_leg", "aux_2", 2, (-0.2, 0.2), "1 1 0", "-70 -30", "right"),
    ("back_leg", "aux_3", 3, (-0.2, -0.2), "-1 1 0", "-70 -30", "back"),
    ("right_back_leg", "aux_4", 4, (0.2, -0.2), "1 1 0", "30 70", "rightback"),
)
_ANKLE_GEOM = {1: "left_ankle_geom", 2: "right_ankle_geom", 3: "third_ankle_geom", 4: "fourth_ankle_geom"}

MAZE_HEIGHT = 0.5  # maze_env.py:140 maze_height=0.5
MAZE_SCALING = 4.0  # d4rl/locomotion/__init__.py:333 (every antmaze-*-v2) 'maze_size_scaling': 4.0


def _leg(name: str, aux: str, k: int, end: tuple, ankle_axis: str, ankle_range: str, geom: str) -> str:
    x, y = end
    return f"""
      <body name="{name}" pos="0 0 0">
        <geom name="aux_{k}_geom" type="capsule" size="0.08" fromto="0 0 0 {x} {y} 0"/>
        <body name="{aux}" pos="{x} {y} 0">
          <joint name="hip_{k}" type="hinge" pos="0 0 0" axis="0 0 1" range="-30 30"/>
          <geom name="{geom}_leg_geom" type="capsule" size="0.08" fromto="0 0 0 {x} {y} 0"/>
          <body pos="{x} {y} 0">
            <joint name="ankle_{k}" type="hinge" pos="0 0 0" axis="{ankle_axis}" range="{ankle_range}"/>
            <geom name="{_ANKLE_GEOM[k]}" type="capsule" size="0.08" fromto="0 0 0 {2 * x} {2 * y} 0"/>
          </body>
        </body>
      </body>"""


def start_offset(maze_map, scaling: float = MAZE_SCALING) -> tuple[float, float]:
    """(torso_x, torso_y) of the reset cell "r" (maze_env.py:270-277: column * scaling, row * scaling)."""
    for i, row in enumerate(maze_map):
        for j, cell in enumerate(row):
            if cell == "r":
                return j * scaling, i * scaling
    raise ValueError("maze map has no reset cell 'r'")


def cell_xy(maze_map, cell, scaling: float = MAZE_SCALING) -> tuple[float, float]:
    """World (x, y) of a cell in D4RL's frame (maze_env.py:227-230): the reset cell is (0, 0), x grows with the
    column and y with the row."""
    tx, ty = start_offset(maze_map, scaling)
    row, col = cell
    return col * scaling - tx, row * scaling - ty


def _blocks(maze_map, scaling: float) -> str:
    # maze_env.py:177-196: a box per wall cell, centred on the cell in the start-offset frame, half-size
    # 0.5 * scaling, half-height maze_height / 2 * scaling, contype = conaffinity = 1
    half_h = MAZE_HEIGHT / 2 * scaling
    out = []
    for i, row in enumerate(maze_map):
        for j, cell in enumerate(row):
            if cell == 1:
                x, y = cell_xy(maze_map, (i, j), scaling)
                out.append(
                    f'    <geom name="block_{i}_{j}" type="box" pos="{x:f} {y:f} {half_h:f}" '
                    f'size="{0.5 * scaling:f} {0.5 * scaling:f} {half_h:f}" contype="1" conaffinity="1" '
                    'rgba="0.7 0.5 0.3 1"/>'
                )
    return "\n".join(out)


def antmaze_xml(maze_map, scaling: float = MAZE_SCALING) -> str:
    """The MJCF of D4RL's ant (ant.xml) with the maze's blocks added to the worldbody (maze_env.py:149-202)."""
    legs = "".join(_leg(*leg) for leg in LEGS)
    motors = "\n".join(
        f'    <motor joint="{j}" ctrlrange="-{CTRL_LIMIT} {CTRL_LIMIT}" ctrllimited="true"/>' for j in MOTORS
    )
    return f"""<mujoco model="ant">
  <compiler inertiafromgeom="true" angle="degree"/>
  <option timestep="{TIMESTEP}" integrator="RK4"/>
  <default>
    <joint limited="true" armature="1" damping="1"/>
    <geom condim="3" conaffinity="0" margin="0.01" friction="1 0.5 0.5" solref=".02 1" solimp=".8 .8 .01"
          rgba="0.8 0.6 0.4 1" density="5.0"/>
  </default>
  <worldbody>
    <geom name="floor" pos="0 0 0" size="40 40 40" type="plane" conaffinity="1" condim="3" rgba="0.8 0.9 0.8 1"/>
    <body name="torso" pos="0 0 {TORSO_Z}">
      <geom name="torso_geom" type="sphere" size="0.25" pos="0 0 0" rgba="0.3 0.9 0.5 1"/>
      <joint name="root" type="free" limited="false" pos="0 0 0" axis="0 0 1" margin="0.01" armature="0"
             damping="0"/>{legs}
    </body>
{_blocks(maze_map, scaling)}
  </worldbody>
  <actuator>
{motors}
  </actuator>
</mujoco>
"""
