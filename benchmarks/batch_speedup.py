"""Batch speed-up on this machine: ``stylize-batch`` with 1 and 2 CPU workers over the same synthetic clips,
plus the per-segment cost (fixed + per frame) that the cluster estimate in the results README is built on.

    python benchmarks/batch_speedup.py --out-dir benchmarks/results/DATE_batch-cpu-2core

Each run is the real command in a fresh process (worker start-up, model load, probe, join all included) into
its own output folder; the baseline is one ``stylize-video`` run per clip, one after the other. The model is an
untrained TransformerNet (random weights, asked for here explicitly: speed does not depend on weight values).
Writes ``batch.json`` and ``batch.md``; records the load average before and after each run (the machine may be
shared: compare runs taken at similar load).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _timed(cmd: list[str]) -> dict:
    before = _load()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stderr[-2000:]}")
    return {"command": shlex.join(cmd), "wall_s": round(wall, 2), "load_before": before, "load_after": _load()}


def _segment_cost(manifest: Path) -> dict:
    """Per-segment cost from the run's manifest: the fixed part each worker measured (open + seek, warm-up,
    encoder start and close) and the rest per frame."""
    segs = list(json.loads(manifest.read_text())["segments"].values())
    frames = np.array([s["frames"] for s in segs], float)
    wall = np.array([s["wall_s"] for s in segs], float)
    fixed = np.array([s["fixed_s"] for s in segs], float)
    warmup = np.array([s["warmup_s"] for s in segs], float)
    return {"segments": len(segs), "frames_mean": round(float(frames.mean()), 1),
            "wall_mean_s": round(float(wall.mean()), 3), "fixed_s": round(float(fixed.mean()), 3),
            "fixed_max_s": round(float(fixed.max()), 3), "warmup_s": round(float(warmup.mean()), 3),
            "fixed_without_warmup_s": round(float((fixed - warmup).mean()), 3),
            "per_frame_ms": round(1000 * float((wall - fixed).sum() / frames.sum()), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", type=Path, required=True, help="where batch.json / batch.md go")
    p.add_argument("--work", type=Path, default=Path("/tmp/stylize-batch-bench"), help="clips, outputs (scratch)")
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--seconds", type=float, default=8.0, help="length of each clip")
    p.add_argument("--size", default="160x90")
    p.add_argument("--segment-seconds", type=float, default=2.0)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--no-baseline", action="store_true", help="skip the stylize-video runs")
    args = p.parse_args()

    import torch
    from stylize_video.benchmarks.machine import collect_machine
    from stylize_video.pipeline.synth import make_test_clip
    from stylize_video.train.checkpoint import ModelInfo, save_checkpoint
    from stylize_video.train.networks import TransformerNet

    w, h = (int(v) for v in args.size.split("x"))
    fps, frames = 25, round(args.seconds * 25)
    work = args.work
    clips = work / "clips"
    for i in range(args.clips):  # a keyframe every second, VFR-free, AAC audio
        make_test_clip(clips / f"clip{i}.mp4", width=w, height=h, frames=frames, fps=fps, gop=fps, seed=i,
                       pattern="noise")
    torch.manual_seed(0)
    model = save_checkpoint(work / "random-transformer-net.pth", TransformerNet(), ModelInfo("transformer_net",
                                                                                             "style", 1))
    batch = [sys.executable, "-m", "stylize_video.pipeline.batch.cli", str(clips), "--checkpoint", str(model),
             "--device", "cpu", "--segment-seconds", str(args.segment_seconds), "--keep-segments", "--quiet"]
    runs = []
    if not args.no_baseline:
        out = work / "single"
        out.mkdir(parents=True, exist_ok=True)
        t0, load = time.perf_counter(), _load()
        for c in sorted(clips.iterdir()):
            _timed([sys.executable, "-m", "stylize_video.pipeline.cli", str(c), str(out / c.name), "--checkpoint",
                    str(model), "--device", "cpu", "--overwrite", "--quiet"])
        runs.append({"what": "stylize-video, one run per clip, one after the other", "workers": 1,
                     "wall_s": round(time.perf_counter() - t0, 2), "load_before": load, "load_after": _load()})
    for n in (int(x) for x in args.workers.split(",")):
        out = work / f"batch-{n}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        summary_path = work / f"summary-{n}.json"
        summary_path.unlink(missing_ok=True)
        run = _timed([*batch, "--out-dir", str(out), "--workers", str(n), "--json", str(summary_path)])
        summary = json.loads(summary_path.read_text())
        run |= {"what": f"stylize-batch --workers {n}", "workers": n, "frames": summary["frames"],
                "batch_wall_s": round(summary["wall_s"], 2), "fps": round(summary["frames"] / run["wall_s"], 2),
                "segment_cost": _segment_cost(out / ".stylize-batch" / "manifest.json"),
                "per_worker": summary["workers"]}
        runs.append(run)
    base = next(r for r in runs if r["what"].startswith("stylize-batch --workers 1"))
    for r in runs:
        r["speedup_vs_batch_1"] = round(base["wall_s"] / r["wall_s"], 2)
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": collect_machine(),
              "clips": {"count": args.clips, "size": args.size, "frames_each": frames, "fps": fps, "gop": fps,
                        "segment_seconds": args.segment_seconds},
              "model": "TransformerNet, random weights (torch, CPU, fp32)", "command": shlex.join(sys.argv),
              "runs": runs}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "batch.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [("| run | workers | wall s | frames/s | speed-up vs 1 worker | segment: fixed s (of which warm-up) + ms/frame "
             "| load before "
            "-> after |"), "|---|---|---|---|---|---|---|"]
    for r in runs:
        cost = r.get("segment_cost")
        cost_text = f"{cost['fixed_s']:.2f} ({cost['warmup_s']:.2f}) + {cost['per_frame_ms']:.1f}" if cost else ""
        fps_text = f"{r['fps']:.2f}" if "fps" in r else f"{args.clips * frames / r['wall_s']:.2f}"
        rows.append(f"| {r['what']} | {r['workers']} | {r['wall_s']:.1f} | {fps_text} | {r['speedup_vs_batch_1']:.2f} "
                    f"| {cost_text} | {r['load_before'][0]} -> {r['load_after'][0]} |")
    (args.out_dir / "batch.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
