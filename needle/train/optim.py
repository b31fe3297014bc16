"""AdamW with decoupled weight decay on matrices only, and a warmup-stable-decay schedule.

The schedule is a pure function of the step, so resuming needs nothing but the step number.
"""
from __future__ import annotations

import torch


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW; the fused (one kernel for all parameters) implementation when the model is on a GPU."""
    # Norm scales, residual gates and biases are not shrunk towards zero: they are few and shape the signal.
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = next(model.parameters()).is_cuda
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, fused=fused or None)


def wsd_lr(step: int, max_steps: int, lr: float, warmup: int, decay_frac: float, final_frac: float = 0.0,
           time_frac: float | None = None) -> float:
    """Linear warmup over `warmup` steps, flat, then linear decay to lr*final_frac over the last decay_frac of steps.

    With `time_frac` (elapsed / time limit), the decay follows the fraction of the time budget instead.
    """
    if step < warmup:
        return lr * (step + 1) / warmup
    if time_frac is not None:
        if decay_frac <= 0 or time_frac < 1 - decay_frac:
            return lr
        progress = (time_frac - (1 - decay_frac)) / decay_frac
        return lr * (1.0 - (1.0 - final_frac) * min(1.0, progress))
    decay_steps = int(max_steps * decay_frac)
    decay_start = max_steps - decay_steps
    if decay_steps <= 0 or step < decay_start:
        return lr
    progress = (step - decay_start) / decay_steps
    return lr * (1.0 - (1.0 - final_frac) * min(1.0, progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def optimizer_tensors(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """AdamW state as a flat name -> tensor dict, for safetensors (no pickling)."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for p, st in optimizer.state.items():
        for key, value in st.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            out[f"{names[id(p)]}::{key}"] = t
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for full, value in tensors.items():
        name, key = full.split("::")
        optimizer.state[params[name]][key] = value.to(params[name].device) if key != "step" else value
