"""One rank of the 2-process gloo FSDP2 test (run by test_distributed.py, not collected).

Usage: fsdp_worker.py RANK WORLD_SIZE PORT OUT_DIR; shards a LoRETTA model with
``torch.distributed.fsdp.fully_shard`` (each decoder layer, then the root), trains it on this
rank's slice of every batch, and (rank 0) writes the gathered trainable parameters to
OUT_DIR/fsdp_{method}.pt. ``reference(method)`` is the same training in one process on whole
batches, which FSDP must reproduce.
"""

import torch
import torch.distributed as dist
from transformers import LlamaConfig, LlamaForCausalLM

from gloo_setup import init_from_argv
from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model

ROWS_PER_RANK = 2


def build(method: str):
    """The tiny Llama with a LoRETTA adapter, identically initialised on every rank."""
    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, vocab_size=64))
    config = (LorettaAdpConfig(bottleneck_size=8, train_norms=True) if method == "adp"
              else LorettaRepConfig(r=4, lora_dropout=0.0))
    return get_peft_model(base, config)


def batches(world: int):
    """Three batches of ``ROWS_PER_RANK * world`` rows."""
    gen = torch.Generator().manual_seed(0)
    return [torch.randint(0, 64, (ROWS_PER_RANK * world, 8), generator=gen) for _ in range(3)]


def train(model, batches_, rows: slice) -> dict:
    """SGD steps on ``rows`` of every batch; return the trainable parameters (full tensors).

    Plain SGD, not Adam: Adam divides by the gradient's running scale, so the last-bit
    differences of a sharded reduction order are amplified to ~1e-5 in entries whose gradient
    is tiny, and the comparison would test round-off instead of FSDP.
    """
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for ids in batches_:
        mine = ids[rows]
        model(input_ids=mine, labels=mine).loss.backward()
        opt.step()
        opt.zero_grad()
    return {name: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
            for name, p in model.named_parameters() if p.requires_grad}


def reference(method: str, world: int) -> dict:
    """The same training without FSDP, on whole batches, in this process."""
    return train(build(method), batches(world), slice(None))


def main() -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    rank, world, out_dir = init_from_argv()
    mesh = init_device_mesh("cpu", (world,))
    for method in ("adp", "rep"):
        model = build(method)
        for layer in model.get_base_model().model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        rows = slice(rank * ROWS_PER_RANK, (rank + 1) * ROWS_PER_RANK)
        state = train(model, batches(world), rows)
        if rank == 0:
            torch.save(state, f"{out_dir}/fsdp_{method}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
