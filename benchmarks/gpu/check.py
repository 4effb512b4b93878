"""The GPU check (issue 27): the four measurements offbench needs from a GPU, in one run of <= 8 minutes on an H100.

Stages, each printed as it goes and saved to ``<out>/check.json`` as soon as it ends (so a run cut off by a
time limit still returns what it measured); a stage that fails is recorded and the next one runs:

1. ``throughput``: IQL updates/s at 1 and 10 vmapped seeds (the pipeline's compiled chunk, compile time apart)
   and Unifloral's IQL from its own files in the same rotated slices (``benchmarks/throughput.py``);
   extrapolated to 10 seeds x 1M updates (goal: <= 300 s).
2. ``eval_speed``: one AntMaze evaluation, 10 seeds x 100 episodes, on the host-parallel path and on MJX,
   compile apart (``benchmarks/eval_speed.py``; goal: < 10 s).
3. ``fidelity``: MJX against the host, same policy and starts: Hopper (TQC behaviour policy, 100 episodes,
   mean returns within 2%) and AntMaze umaze (offbench's BC fitted on a small rebuild made here, 100 episodes,
   success rates agreeing within their 95% interval) (``benchmarks/eval_fidelity.py``).
4. ``eval_share``: the share of a 10-seed, 1M-step run's wall time spent evaluating at the suite's schedule,
   computed from stages 1-3 and refreshed after each of them (no extra measurement): locomotion 200 evaluations of 10 x 10 episodes,
   AntMaze 10 evaluations of 10 x 100 episodes, per backend.

    python benchmarks/gpu/check.py --out DIR            # the GPU sizes (benchmarks/gpu/check.sh runs this)
    python benchmarks/gpu/check.py --smoke --out DIR    # the same stages at tiny sizes on a CPU (AntMaze host-only)
    python benchmarks/gpu/check.py --smoke --dry-run    # the plan only: sizes, each script's arguments parsed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))  # benchmarks/: throughput, eval_speed, eval_fidelity, anchors
# offbench itself is the installed one (the wheel on the GPU machine, the editable install in a checkout)

FULL = {
    "dataset_size": 1_000_000,
    "seeds": "1,10",
    "chunk": 5000,
    "slice_s": 5.0,
    "rounds": 3,
    "eval_seeds": 10,
    "eval_episodes": 100,
    "fidelity_episodes": 100,
    "horizon": None,
    "antmaze_size": 20_000,
    "bc_steps": 20_000,
    "antmaze_mjx": True,
}
SMOKE = {
    "dataset_size": 5000,
    "seeds": "1,2",
    "chunk": 50,
    "anchor_scan": 50,
    "slice_s": 0.5,
    "rounds": 1,
    "eval_seeds": 2,
    "eval_episodes": 2,
    "fidelity_episodes": 3,
    "horizon": 20,
    "antmaze_size": "small",
    "bc_steps": 50,
    "antmaze_mjx": False,  # MJX's AntMaze step compiles for 5-17 min on 2 CPU cores (tests/test_mjx.py)
}
RUN_STEPS, SEEDS = 1_000_000, 10  # the run stages 1 and 4 project to
GOALS = {"train_10x1M_s": 300.0, "antmaze_eval_s": 10.0}
ANTMAZE = "antmaze-umaze-v2"


def throughput_argv(size: dict, out: Path) -> list[str]:
    return [
        "--algos", "iql", "--seeds", size["seeds"], "--anchors", "unifloral", "--chunk", str(size["chunk"]),
        "--slice", str(size["slice_s"]), "--rounds", str(size["rounds"]),
        "--dataset-size", str(size["dataset_size"]), "--json", str(out / "throughput.json"),
    ] + (["--anchor-scan", str(size["anchor_scan"])] if size.get("anchor_scan") else [])  # fmt: skip


def eval_speed_argv(size: dict, workers: int, out: Path) -> list[str]:
    argv = [
        "--tasks", ANTMAZE, "--backends", "host-parallel,mjx" if size["antmaze_mjx"] else "host-parallel",
        "--seeds", str(size["eval_seeds"]), "--episodes", str(size["eval_episodes"]), "--workers", str(workers),
        "--json", str(out / "eval_speed.json"),
    ]  # fmt: skip
    return argv + (["--horizon", str(size["horizon"])] if size["horizon"] else [])


def stage_throughput(size: dict, out: Path) -> dict:
    import throughput

    throughput.main(throughput_argv(size, out))
    rows = json.loads((out / "throughput.json").read_text())
    by = {r["name"]: r for r in rows["rows"]}
    many = max(int(s) for s in size["seeds"].split(","))
    mine = by[f"iql x{many}"]
    res = {
        "header": rows["header"],
        "per_seed": {n: r["per_seed"][0] for n, r in by.items()},
        "total": {n: r["total"][0] for n, r in by.items()},
        "compile_s": {n: r["compile_s"] for n, r in by.items()},
        "ratios": rows["ratios"],
        "seeds_measured": many,
        # vmapped seeds run side by side: a 10-seed run lasts 1M / (updates/s per seed at 10 seeds)
        "projected_10x1M_s": RUN_STEPS / mine["per_seed"][0] if many == SEEDS else None,
        "unifloral": "unifloral" in by,
    }
    if res["projected_10x1M_s"] is not None:
        res["goal_met"] = res["projected_10x1M_s"] <= GOALS["train_10x1M_s"]
    return res


def stage_eval_speed(size: dict, workers: int, out: Path) -> dict:
    import eval_speed

    eval_speed.main(eval_speed_argv(size, workers, out))
    rows = json.loads((out / "eval_speed.json").read_text())["rows"]
    res = {"rows": rows, "seconds": {r["backend"]: r["seconds"] for r in rows}}
    if "mjx" in res["seconds"]:
        res["mjx_compile_and_first_s"] = next(r for r in rows if r["backend"] == "mjx")["compile_and_first_s"]
    full = size["eval_seeds"] == SEEDS and size["eval_episodes"] == 100
    res["goal_met"] = {b: s < GOALS["antmaze_eval_s"] for b, s in res["seconds"].items()} if full else None
    return res


def stage_fidelity(size: dict, workers: int, data_dir: Path) -> dict:
    import eval_fidelity

    from offbench.cli.data import build_one

    n, horizon = size["fidelity_episodes"], size["horizon"]
    hop = eval_fidelity.check("Hopper-v5", n, horizon, workers, repeat=True)
    hop["pass"] = abs(hop["rel_diff"]) <= 0.02
    print(f"Hopper-v5 host {hop['host_mean']:.1f}  mjx {hop['mjx_mean']:.1f}  diff {100 * hop['rel_diff']:+.2f}%")
    res = {"hopper": hop}
    t0 = time.perf_counter()
    build_one(ANTMAZE, size["antmaze_size"], 0, str(data_dir), progress=False, overwrite=True)
    res["antmaze_build_s"] = time.perf_counter() - t0
    am = eval_fidelity.check_antmaze(ANTMAZE, n, horizon, workers, size["bc_steps"], mjx=size["antmaze_mjx"])
    print(f"{ANTMAZE} success host {am['host_success']:.2f}  mjx {am.get('mjx_success')}  pass {am['pass']}")
    res["antmaze"] = am
    return res


def stage_eval_share(results: dict, size: dict) -> dict:
    """Projected evaluation share of a 10-seed, 1M-step run, per suite and backend (see the module doc)."""
    from offbench.data.suites import SUITES

    tp = results.get("throughput") or {}
    many = tp.get("seeds_measured")
    ups = (tp.get("per_seed") or {}).get(f"iql x{many}")
    if not ups:
        raise RuntimeError("needs stage 1 (throughput)")
    train_s = RUN_STEPS / ups
    out = {"train_s": train_s, "updates_per_s_per_seed": ups, "seeds": many, "suites": {}}
    measured = {}  # suite -> (backend -> seconds of the episodes measured, episodes measured)
    ev = results.get("eval_speed") or {}
    if ev.get("seconds"):
        measured["antmaze"] = (ev["seconds"], size["eval_seeds"] * size["eval_episodes"])
    hop = (results.get("fidelity") or {}).get("hopper")
    if hop:
        measured["locomotion"] = ({"host": hop["host_s"], "mjx": hop["mjx_s"]}, size["fidelity_episodes"])
    for suite, (secs, episodes) in measured.items():
        s = SUITES[suite]
        evals = RUN_STEPS // s.eval_every
        per_eval = SEEDS * s.eval_episodes
        rows = {}
        for backend, sec in secs.items():
            if sec is None:
                continue
            eval_s = evals * sec * per_eval / episodes
            rows[backend] = {"eval_s": eval_s, "share": eval_s / (eval_s + train_s)}
        out["suites"][suite] = {"evaluations": evals, "episodes_each": per_eval, "backends": rows}
        for b, r in rows.items():
            print(f"{suite:10s} {b:13s} {evals} x {per_eval} episodes: {r['eval_s']:.0f} s, {100 * r['share']:.1f}%")
    return out


def device_info() -> dict:
    import jax

    d = jax.devices()[0]
    return {
        "platform": d.platform,
        "device_kind": d.device_kind,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def dry_run(size: dict, workers: int, out: Path) -> dict:
    """Parse every argument list with its script's own parser; resolve the anchor and the behaviour files."""
    import eval_fidelity
    import eval_speed
    import throughput
    from anchors import source_dir

    plan = {
        "throughput": vars(throughput.parser().parse_args(throughput_argv(size, out))),
        "eval_speed": vars(eval_speed.parser().parse_args(eval_speed_argv(size, workers, out))),
        "unifloral_src": str(source_dir("unifloral")),
        "behavior_dir": str(eval_fidelity.policy_dir()),
    }
    for p in ("hopper-tqc", "ant-expert"):
        if not (eval_fidelity.policy_dir() / "policies" / f"{p}.npz").is_file():
            raise FileNotFoundError(f"{p}.npz not under {eval_fidelity.policy_dir()}/policies")
    return plan


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the rehearsal on a CPU")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and check its arguments; measure nothing")
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-out", help="folder for the JSON ($OUT)")
    ap.add_argument("--stages", default="throughput,eval_speed,fidelity", help="eval_share follows each of them")
    ap.add_argument("--workers", type=int, default=None, help="host evaluation workers (default: cores - 1)")
    ap.add_argument(
        "--merge",
        default="",
        metavar="JSON,...",
        help="earlier check.json files whose stages to start from (later wins), e.g. to compute eval_share here "
        "from a first GPU run and a rerun of one stage: --merge a.json,b.json --stages eval_share",
    )
    args = ap.parse_args(argv)
    size = SMOKE if args.smoke else FULL
    workers = args.workers if args.workers is not None else max(1, (os.cpu_count() or 2) - 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="offbench-gpu-check-"))
    os.environ.setdefault("MINARI_DATASETS_PATH", str(tmp / "minari"))  # the AntMaze rebuild, never carried back
    data_dir = Path(os.environ.get("OFFBENCH_BEHAVIOR_DIR", ROOT.parent / "shared" / "data"))
    os.environ["OFFBENCH_BEHAVIOR_DIR"] = str(data_dir)
    results: dict = {"mode": "smoke" if args.smoke else "full", "sizes": size, "workers": workers}
    for f in filter(None, args.merge.split(",")):
        earlier = json.loads(Path(f).read_text())
        results.setdefault("merged_from", []).append({"file": f, "device": earlier.get("device")})
        results.update({k: v for k, v in earlier.items() if k in ("throughput", "eval_speed", "fidelity")})
        results["sizes"] = size = earlier.get("sizes", size)
    results["device"] = device_info()
    print(f"# gpu check ({results['mode']}): {results['device']}", flush=True)
    if args.dry_run:
        results["plan"] = dry_run(size, workers, out)
        print(json.dumps(results["plan"], indent=1, default=str))
        return 0
    stages = {
        "throughput": lambda: stage_throughput(size, out),
        "eval_speed": lambda: stage_eval_speed(size, workers, out),
        "fidelity": lambda: stage_fidelity(size, workers, data_dir),
        "eval_share": lambda: stage_eval_share(results, size),
    }
    failed = []
    for name in args.stages.split(","):
        print(f"\n## stage {name}", flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = stages[name]()
        except Exception as e:  # record it and go on: the next stage's figures are worth the time
            traceback.print_exc()
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            failed.append(name)
        results[name]["stage_s"] = time.perf_counter() - t0
        if name != "eval_share" and "per_seed" in results.get("throughput", {}):
            try:  # stage 4 is computed from 1-3: refreshed after each, so a cut-off run still has it
                results["eval_share"] = stage_eval_share(results, size)
            except Exception as e:
                results["eval_share"] = {"error": f"{type(e).__name__}: {e}"}
        (out / "check.json").write_text(json.dumps(results, indent=1, default=str))
        print(f"## stage {name}: {results[name]['stage_s']:.0f} s -> {out / 'check.json'}", flush=True)
    print(f"\n# done; failed stages: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
