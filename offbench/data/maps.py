"""Tables the suites are built from (offbench/data/suites.py), each with its source: the point-maze grids and
cells, and the ids of Minari's MuJoCo datasets. Pure data, no imports."""

# maze2d / pointmaze (tasks.maze2d_tasks, tasks.pointmaze_tasks): the evaluation env's reset ("r") and goal ("g") cells
POINTMAZES = {  # maze: (env id, horizon, reset cell, goal cell, D4RL ref min, ref max)
    "umaze": ("PointMaze_UMaze-v3", 300, (3, 1), (1, 1), 23.85, 161.86),
    "medium": ("PointMaze_Medium-v3", 600, (1, 1), (6, 6), 13.13, 277.39),
    "large": ("PointMaze_Large-v3", 800, (1, 1), (7, 9), 6.7, 273.99),
}
MAZE_GRIDS = {  # Gymnasium-Robotics maps.U_MAZE / MEDIUM_MAZE / LARGE_MAZE (1 = wall)
    "umaze": ["11111", "10001", "11101", "10001", "11111"],
    "medium": ["11111111", "10011001", "10010001", "11000111", "10010001", "10100101", "10001001", "11111111"],
    "large": [
        "111111111111",
        "100001000001",
        "101101010101",
        "100000010001",
        "101111011101",
        "100101000001",
        "110101010111",
        "100100010001",
        "111111111111",
    ],
}

# Minari's own MuJoCo datasets, ``mujoco/<env>/<level>-v0`` (Gymnasium v5 envs): the folders of
# huggingface.co/datasets/farama-minari/mujoco, levels as minari-dataset-generation-scripts
# scripts/mujoco/create_dataset.py ENV_IDS (v0 release: expert, medium, and simple where ENV_IDS has it).
# Reference returns: each dataset's metadata (ref_min_score / ref_max_score, create_dataset's random and expert
# policies); evaluation: the dataset's eval_env_spec, else its env_spec (as Minari's utils.py L283-289).
MINARI_MUJOCO = {
    **dict.fromkeys(("Ant", "HalfCheetah", "Hopper", "Humanoid", "Walker2d"), ("expert", "medium", "simple")),
    **dict.fromkeys(
        ("InvertedDoublePendulum", "InvertedPendulum", "Pusher", "Reacher", "Swimmer"), ("expert", "medium")
    ),
}
