"""D4RL's AntMaze maps and time limits (import-light: :mod:`offbench.data.tasks` builds its tasks from them,
:mod:`offbench.d4rl_envs.antmaze` its environments)."""

from __future__ import annotations

# maze_env.py:56-79: U_MAZE_TEST, BIG_MAZE_TEST, HARDEST_MAZE_TEST (the maps of every antmaze-*-v2,
# locomotion/__init__.py:329, 346, 363, 380, 397, 414); 1 = wall, "r" = reset cell, "g" = goal cell
MAZES = {
    "umaze": ("11111", "1r001", "11101", "1g001", "11111"),
    "medium": ("11111111", "1r011001", "10010001", "11000111", "10010001", "10100101", "100010g1", "11111111"),
    "large": (
        "111111111111",
        "1r0001000001",
        "101101010101",
        "100000010001",
        "101111011101",
        "100101000001",
        "110101010111",
        "100100010g01",
        "111111111111",
    ),
}
# the time limits of the registrations: 700 for umaze(-diverse), 1000 for medium and large
# (locomotion/__init__.py:327, 344, 361, 378, 395, 412)
MAX_EPISODE_STEPS = {"umaze": 700, "medium": 1000, "large": 1000}


def maze_map(name: str) -> list:
    return [[c if c in "rg" else int(c) for c in row] for row in MAZES[name]]
