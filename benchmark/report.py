"""The benchmark's results as a plain-text table (for people) and a JSON file (for comparing runs)."""
import json
from pathlib import Path


def format_report(results: dict) -> str:
    m = results["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, device {m['device']}"
             + (f" ({m['gpu']})" if "gpu" in m else "") + (f", load {m['load_avg_1m']}" if "load_avg_1m" in m else "")]
    if results.get("throughput"):
        lines += ["", "training throughput (median of interleaved rounds; MFU = tokens/s × FLOPs/token ÷ measured "
                  "matmul peak; FLOPs/token = 6·N + 12·L·T·C)",
                  f"{'run':<22} {'model':<24} {'batch':>6} {'threads':>7} {'dtype':>8} {'compiled':>8} {'graphs':>15} "
                  f"{'tokens/s':>10} {'ms/step':>8} {'GFLOP/s':>8} {'peak':>7} {'MFU':>6} {'warm-up s':>9} {'GPU busy':>8}"]
        for name, r in results["throughput"].items():
            lines.append(f"{name:<22} {r['model']:<24} {r['batch']:>6} {r['threads']:>7} {r['dtype']:>8} "
                         f"{str(r['compiled']):>8} {r.get('graphs') or '-':>15} {r['tokens_per_s']:>10,.0f} {r['step_ms']:>8.1f} {r['achieved_gflops']:>8.1f} "
                         f"{r['peak_gflops']:>7.0f} {r['mfu']:>6.1%} {r['warmup_s']:>9.1f} "
                         + (f"{r['gpu_busy']:>8.0%}" if r.get("gpu_busy") is not None else f"{'-':>8}"))
    if results.get("time_to_loss"):
        lines += ["", "time to loss (wall seconds from start until the whole val split is at the target, evaluations and "
                  "checkpoints included; best val: the best sampled evaluation; whole val: the whole split at the stop)",
                  f"{'config':<40} {'target':>6} {'reached':>7} {'seconds':>8} {'step':>6} {'best val':>8} {'whole val':>9}"]
        for name, r in results["time_to_loss"].items():
            lines.append(f"{name:<40} {r['target']:>6} {str(r['reached']):>7} {r['seconds']:>8.1f} {r['iter']:>6} "
                         f"{r['best_val']:>8.4f} {r['val_whole']:>9.4f}")
    if results.get("side_by_side"):
        rows = results["side_by_side"]
        lines += ["", "whole command to the target val loss, side by side (fresh process, empty compile caches; ours "
                  "stops on the whole val split, nanoGPT at its first sampled evaluation at or below the target, "
                  "or at its end when it never gets there)",
                  f"{'command':<60} {'reached':>7} {'seconds':>8} {'step':>6} {'val':>7}  {'tokens/s':>10}"]
        for r in rows:
            name = r.get("label") or f"{r['command']} {r.get('config', '')} {' '.join(r.get('overrides', []))}".strip()
            if "failed" in r:
                lines.append(f"{name:<60} failed: {r['failed'][-200:]}")
                continue
            rate = r.get("tokens_per_s") or r.get("tokens_per_s_logged")
            val = "-" if r["val"] is None else f"{r['val']:.4f}"      # ours never came near enough to check it
            lines.append(f"{name:<60} {str(r['reached']):>7} {r['seconds']:>8.1f} {r['iter']:>6} {val:>7}  "
                         f"{rate if rate is None else format(rate, ',.0f'):>10}")
    if results.get("generation"):
        g = results["generation"]
        lines += ["", f"generation ({g['model']}, random weights, greedy, {g['rows'][0]['new_tokens']} new tokens "
                  f"to fill the context)",
                  f"{'batch':>5} {'KV cache':>8} {'compiled':>8} {'tokens/s':>10} {'seconds':>8}  CUDA graphs"]
        for r in g["rows"]:
            lines.append(f"{r['batch']:>5} {str(r['kv_cache']):>8} {str(r['compiled']):>8} {r['tokens_per_s']:>10,.0f} "
                         f"{r['seconds']:>8.2f}  {', '.join(r.get('graphs', [])) or '-'}")
    if results.get("peak_memory_mb"):
        lines += ["", "peak memory (MiB; CPU: the process's peak RSS so far, so it includes earlier sections): "
                  + ", ".join(f"{k} {v:,.0f}" for k, v in results["peak_memory_mb"].items())]
    return "\n".join(lines)


def write_json(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path
