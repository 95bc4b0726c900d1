"""Terminal and Markdown renderings of a result record (the JSON dict, so old JSON files render too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = list[str]


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def fmt_fps(value: float | None) -> str:
    """FPS with precision where it matters: 1234, 56.7, 0.123."""
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def model_rows(record: dict[str, Any]) -> tuple[Row, list[Row]]:
    """Header and rows of the model-only table, in run order."""
    header = ["backend", "input size", "batch", "ms/frame (median)", "ms/frame (p95)", "FPS", "speed-up",
              "PSNR vs baseline (dB)", "GPU mem (MB)", "status"]
    rows: list[Row] = []
    for r in record["model_results"]:
        mem = r.get("memory") or {}
        used = mem.get("device_used_delta_mb")
        if r["variant"] == record["baseline"] and r["status"] == "ok":
            quality = "reference"
        elif r["output_finite"] is False:
            quality = "NaN/Inf!"
        else:
            quality = _num(r["psnr_db"], "{:.1f}")
        rows.append([r["variant"], r["size"], str(r["batch"]), _num(r["ms_per_frame"]), _num(r["ms_per_frame_p95"]),
                     fmt_fps(r["fps"]), _num(r["speedup"], "{:.2f}x"), quality, _num(used, "{:.0f}"),
                     r["status"] if r["status"] == "ok" else f"{r['status']}: {r['reason']}"])
    return header, rows


def skipped_rows(record: dict[str, Any]) -> list[Row]:
    return [[v["label"], v["status"], v["reason"] or ""] for v in record["variants"] if v["status"] != "ran"]


def stage_rows(record: dict[str, Any]) -> tuple[Row, list[Row]]:
    header = ["stage", "FPS", "ms/frame", "frames", "what is included", "status"]
    rows = []
    for s in record["end_to_end"]["stages"]:
        detail = s["detail"]
        what = detail.get("includes", "")
        if s["stage"] == "model" and detail.get("backend"):
            what += f" ({detail['backend']}, {detail.get('precision')}, {detail.get('device')})"
        if s["stage"] == "encode" and detail.get("codec"):
            opts = " ".join(f"{k}={v}" for k, v in detail.get("options", {}).items()) or "encoder defaults"
            what += f" ({detail['codec']}, {opts})"
        rows.append([s["stage"], fmt_fps(s["fps"]), _num(s["ms_per_frame"]), str(s["frames"]), what,
                     s["status"] if s["status"] == "ok" else f"{s['status']}: {s['reason']}"])
    return header, rows


def throughput_rows(record: dict[str, Any]) -> tuple[Row, list[Row]]:
    header = ["batch", "streams", "FPS", "ms/batch", "GPU mem used (MB)", "status"]
    rows = [[str(p["batch"]), str(p["streams"]), fmt_fps(p["fps"]), _num(p["ms_per_batch"]),
             _num(p["device_used_mb"], "{:.0f}"), p["status"] if p["status"] == "ok" else f"failed: {p['reason']}"]
            for p in record["throughput"]["results"]]
    return header, rows


def _text_table(header: Row, rows: list[Row]) -> str:
    widths = [max(len(c) for c in col) for col in zip(header, *rows)]
    line = "  ".join
    out = [line(h.ljust(w) for h, w in zip(header, widths)), line("-" * w for w in widths)]
    out += [line(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(out)


def _md_table(header: Row, rows: list[Row]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _machine_line(record: dict[str, Any]) -> str:
    m = record["machine"]
    gpu = m["gpu"]
    gpu_text = (f"{gpu['name']} ({gpu['memory_mb']} MB, driver {gpu['driver']}, CUDA {m['cuda']['torch_cuda']})"
                if gpu else "no GPU")
    v = m["versions"]
    load = m.get("load_average")
    busy = f"; load average {load[0]:.1f} at start" if load else ""
    return (f"{m['label']}: {m['cpu']['count']}x {m['cpu']['model']}, {gpu_text}; torch {v['torch']}, "
            f"onnxruntime {v['onnxruntime']}, TensorRT {v['tensorrt'] or 'not installed'}, PyAV {v['av']}{busy}")


def _model_line(record: dict[str, Any]) -> str:
    mdl, st = record["model"], record["settings"]
    weights = f"RANDOM weights ({mdl['random_weights']}, explicitly requested)" if mdl["random_weights"] else mdl["path"]
    arch = f", {mdl['arch']}" if mdl.get("arch") else ""
    return (f"model: {weights}{arch}, {mdl['format']}, task {mdl['task']}, scale {mdl['scale']}; "
            f"{st['warmup']} warm-up + {st['iters']} timed iterations, batch {st['batch']}, TF32 off")


def _e2e_summary(record: dict[str, Any]) -> str:
    e2e = record["end_to_end"]
    if e2e["status"] != "ok":
        return f"end-to-end: {e2e['status']} ({e2e['reason']})"
    text = f"bottleneck: {e2e['bottleneck'] or 'unknown'}"
    if e2e["full_vs_ceiling"] is not None:
        text += f"; full pipeline reaches {100 * e2e['full_vs_ceiling']:.0f}% of that stage's ceiling"
    ratio, runs = e2e.get("pipeline_vs_plain"), e2e.get("runs") or []
    if ratio is not None:
        each = ", ".join(f"{r['ratio']:.2f}" for r in runs if r.get("ratio") is not None)
        setup = [r["ratio_incl_setup"] for r in runs if r.get("ratio_incl_setup") is not None]
        load = e2e.get("load_average") or []
        text += (f"\npipeline vs plain decode -> encode (same encoder settings, same run): {ratio:.2f} "
                 f"(median of {len(runs)}: {each}; with set-up/warm-up: {min(setup):.2f}-{max(setup):.2f})"
                 + (f"; load average {load[0]:.2f} before, {load[-1]:.2f} after" if len(load) > 1 else ""))
    return text


def _render(record: dict[str, Any], table: Callable[[Row, list[Row]], str], h: Callable[[str], str],
            sep: str = "\n") -> str:
    parts = [h("Machine"), _machine_line(record), _model_line(record), h("Model only"),
             table(*model_rows(record))]
    skipped = skipped_rows(record)
    if skipped:
        parts += [h("Not measured"), table(["backend", "status", "reason"], skipped)]
    parts += [h("End to end")]
    e2e = record["end_to_end"]
    if e2e["clip"]:
        c = e2e["clip"]
        parts.append(f"clip: {c['width']}x{c['height']}, {c['frames']} frames, {c['codec']}")
    if e2e["stages"]:
        parts.append(table(*stage_rows(record)))
    parts.append(_e2e_summary(record))
    tp = record["throughput"]
    parts += [h(f"Throughput ({tp['variant']})")]
    if tp["results"]:
        size = tp["size"]
        parts += [f"size {size['label']} ({size['width']}x{size['height']})" if size else "", table(*throughput_rows(record))]
    if tp["status"] != "ok":
        parts.append(f"{tp['status']}: {tp['reason']}")
    if record["notes"]:
        parts += [h("Notes"), "\n".join(f"- {n}" for n in record["notes"])]
    return sep.join(p for p in parts if p) + "\n"


def render_text(record: dict[str, Any]) -> str:
    """Plain-text report for the terminal."""
    return _render(record, _text_table, lambda title: f"\n== {title} ==")


def render_markdown(record: dict[str, Any]) -> str:
    """Markdown report (the committed ``results/<date>_<machine>/bench.md``)."""
    title = f"# stylize-bench: {record['machine']['label']}, {record['created']}\n\n`{record['command']}`\n"
    return title + "\n" + _render(record, _md_table, lambda t: f"## {t}", sep="\n\n")
