"""``train(TrainConfig) -> TrainResult``: the official HRM / TRM training loop on one device.

Each step: refill halted slots with new puzzles, run one segment per slot with the truncated
gradient (HRM: 1 step; TRM: the last H cycle), compute the ACT loss (stablemax LM + halting BCE, + the
Q-continue target unless ``no_ACT_continue``), one optimizer step (+ the EMA update when ``ema``).
Every ``eval_every`` steps (and at the end) evaluate on the held-out set and write
``last.safetensors`` and, when the chosen metric improves, ``best.safetensors`` (our checkpoint format,
atomic writes; the EMA weights when ``ema``), and ``resume.pt`` (:mod:`hrm.train.resume`).

Devices: CPU runs in float32. On CUDA the model's ``forward_dtype`` is bfloat16: HRM keeps fp32
master weights and casts them to the activation dtype itself (the official ``Casted*`` layers), so
no autocast is needed and the checkpoint stays fp32. Losses are computed in float64 (stablemax) /
float32 (Q BCE) whatever the activation dtype.

``time_budget`` (wall clock) / ``cpu_budget`` (process CPU seconds): the loop stops early enough that
the final evaluation and checkpoint still fit, using the measured duration of the last evaluation (or
an estimate from the step time before the first one). With a budget, the cosine part of the LR
schedule runs on max(step, time) progress so a decay still completes when the budget, not ``steps``,
ends the run. ``pause_at`` stops after that step with only ``resume.pt`` written; ``resume`` continues
a run from its ``resume.pt`` exactly.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrm.checkpoint import load_checkpoint
from hrm.model import RecursiveModel, build_model
from hrm.train import resume as resume_mod
from hrm.train.act import StepOutput, TrainCarry, act_step, empty_carry, refill
from hrm.train.budget import TimeBudget
from hrm.train.checkpointing import Checkpointer
from hrm.train.config import TrainConfig, model_config
from hrm.train.curriculum import RevealSchedule
from hrm.train.data import DataBundle, load_data
from hrm.train.ema import EMA
from hrm.train.evaluate import evaluate
from hrm.train.losses import ACTLoss, act_loss
from hrm.train.meter import TrainMeter
from hrm.train.optim import OptimizerSet, build_optimizers, lr_scale
from hrm.train.runlog import RunLog, environment
from hrm.train.stream import PuzzleStream
from hrm.train.warmstart import provenance as warm_start_provenance
from hrm.train.warmstart import warm_start_config


@dataclass
class TrainResult:
    """What a run produced; every path is inside ``out_dir``."""

    out_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    steps: int
    train_seconds: float  # training loop + evaluations + checkpoints (data preparation excluded)
    total_seconds: float  # the whole call
    stopped_by: str  # "steps" | "time_budget" | "pause"
    final_eval: dict[str, float] | None  # None after a pause with no evaluation yet
    best_eval: dict[str, float] | None
    num_parameters: int
    puzzles_seen: int
    history: list[dict[str, Any]] = field(default_factory=list)
    model: RecursiveModel | None = field(default=None, repr=False)  # the trained model (EMA weights when ema), eval mode


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


def resolve_forward_dtype(name: str, device: torch.device) -> str:
    if name != "auto":
        return name
    return "bfloat16" if device.type == "cuda" else "float32"


def training_record(cfg: TrainConfig, data: DataBundle, device: torch.device, optimizer_note: str,
                    init_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """What goes into the checkpoint's task metadata under "training" (provenance, not behaviour)."""
    record = {"seed": cfg.seed, "command": cfg.command, "preset": cfg.preset, "data": data.info,
              "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "device": str(device),
              "optimizer": optimizer_note, "augment": cfg.augment}
    if init_from is not None:
        record["init_from"] = init_from
    return record


def train_step(model: RecursiveModel, carry: TrainCarry, stream: PuzzleStream, opt: OptimizerSet, cfg: TrainConfig,
               generator: torch.Generator | None, ema: EMA | None = None) -> tuple[StepOutput, ACTLoss]:
    """One optimizer step: refill halted slots, one segment (truncated gradient), ACT loss, update,
    EMA. The loss is the batch sum divided by the batch size, as ``pretrain.py`` scales it."""
    refill(model, carry, stream)
    outputs = act_step(model, carry, generator)
    loss = act_loss(outputs.logits, outputs.q_halt, outputs.q_continue, carry.labels, outputs.target_q_continue,
                    cfg.loss_type)
    (loss.total / cfg.batch_size).backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    opt.zero_grad()
    if ema is not None:
        ema.update(model)
    return outputs, loss


def _progress(cfg: TrainConfig, console):
    """A rich progress bar, or a null context when disabled."""
    if not cfg.progress:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), TextColumn("{task.fields[stats]}"), console=console, transient=False)


def train(cfg: TrainConfig, console=None) -> TrainResult:
    """Train an HRM or a TRM as ``cfg`` says; see the module docstring for the loop."""
    t_call = time.perf_counter()
    cfg.validate()
    saved = resume_mod.load_state(cfg.resume) if cfg.resume else None
    if saved is not None:
        resume_mod.check_config(saved["config"], cfg, cfg.resume)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(cfg.device)
    forward_dtype = resolve_forward_dtype(cfg.forward_dtype, device)
    data = load_data(cfg)

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    init_from = None
    if cfg.init_from:
        init_ckpt = load_checkpoint(cfg.init_from)
        init_from = warm_start_provenance(init_ckpt)
        mcfg = warm_start_config(init_ckpt, cfg.arch, data.seq_len, data.vocab_size, data.num_puzzle_identifiers,
                                 forward_dtype, data.task_meta)
        model = RecursiveModel.from_tensors(mcfg, init_ckpt.tensors).to(device).train()
    else:
        mcfg = model_config(cfg, data.seq_len, data.vocab_size, data.num_puzzle_identifiers, forward_dtype)
        model = build_model(mcfg).to(device).train()
    if cfg.compile:
        for level in mcfg.stack_levels:
            getattr(model, level).compile()
    opt = build_optimizers(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), cfg.puzzle_emb_lr,
                           cfg.puzzle_emb_weight_decay, cfg.optimizer)
    ema = EMA(model, cfg.ema_rate) if cfg.ema else None
    num_params = sum(p.numel() for p in model.parameters())

    out = Path(cfg.out)
    step = int(saved["step"]) if saved is not None else 0
    log = RunLog(out, resume_step=step if saved is not None else None)
    task_meta = {**data.task_meta, "training": training_record(cfg, data, device, opt.note, init_from)}
    ckpt = Checkpointer(out, cfg.ckpt_dtype, task_meta, cfg.best_metric)
    log.update_run(config=cfg.to_dict(), model_config=mcfg.to_dict(), num_parameters=num_params,
                   data=data.info, n_train=len(data.train), n_eval=len(data.eval), device=str(device),
                   forward_dtype=forward_dtype, optimizer=opt.note, environment=environment(), init_from=init_from)

    stream = PuzzleStream(data.train, rng, data.augmenter)
    curriculum = RevealSchedule(cfg.reveal, cfg.reveal_until) if cfg.reveal > 0 else None
    carry = empty_carry(model, cfg.batch_size, device)
    meter = TrainMeter(device)
    history: list[dict[str, Any]] = []
    budget_seconds, clock = (cfg.cpu_budget, "cpu") if cfg.cpu_budget is not None else (cfg.time_budget, "wall")
    budget = TimeBudget(budget_seconds, mcfg.halt_max_steps * len(data.eval) / cfg.batch_size,
                        save_seconds=2.0 + num_params * 8 / 100e6, clock=clock)
    stopped_by = "steps"
    final_eval: dict[str, float] | None = None
    last_eval_step = -1
    if saved is not None:
        last_eval_step = _restore(saved, model, opt, ema, carry, stream, generator, meter, budget, ckpt, clock)
        history = log.records()
        log.update_run(resumed=[*log.run.get("resumed", []), {"step": step, "command": cfg.command}])

    def save_state() -> None:
        position = stream.state_dict()
        resume_mod.save_state(resume_mod.resume_path(out), {
            "step": step, "config": cfg.to_dict(), "model": model.state_dict(), "optimizers": opt.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "carry": {k: v.detach().cpu() for k, v in vars(carry).items()},
            "stream": {**position, "order": torch.from_numpy(position["order"])},  # (weights_only torch.load)
            "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "meter": meter.state_dict(),
            "budget": {"clock": clock, "spent": budget.elapsed(), "last_eval_seconds": budget.last_eval_seconds},
            "best": {"value": ckpt.best_value, "eval": ckpt.best_eval}, "last_eval_step": last_eval_step})

    def run_eval(step: int) -> dict[str, float]:
        nonlocal last_eval_step
        last_eval_step = step
        t = budget.now()
        model.eval()
        with ema.applied(model) if ema is not None else contextlib.nullcontext(model):
            metrics = evaluate(model, data.eval, cfg.eval_batch_size, device)
            improved = ckpt.save(model, metrics, step)
        model.train()
        budget.record_eval(budget.now() - t)
        save_state()
        record = {"kind": "eval", "step": step, "elapsed": budget.elapsed(), "seconds": budget.last_eval_seconds,
                  "best": improved, **metrics}
        log.metrics(record)
        history.append(record)
        _print(console, progress, f"eval @ {step}: exact {metrics['exact_fixed']:.1%} fixed / "
                                  f"{metrics['exact_act']:.1%} ACT, token {metrics['token_fixed']:.1%}, "
                                  f"ACT segments {metrics['segments_act']:.2f}" + (" (best)" if improved else ""))
        return metrics

    with _progress(cfg, console) as progress:
        task_id = progress.add_task("train", total=cfg.steps, completed=step, stats="") if progress is not None else None
        while step < cfg.steps:
            if budget.exhausted():
                stopped_by = "time_budget"
                break
            if cfg.pause_at is not None and step >= cfg.pause_at:
                stopped_by = "pause"
                break
            t_step = budget.now()
            step += 1
            lr = opt.set_lr_scale(lr_scale(step, cfg.lr_warmup_steps, cfg.steps, cfg.lr_min_ratio, budget.fraction()))
            if curriculum is not None:
                stream.reveal_fraction = curriculum.fraction(max(step / cfg.steps, budget.fraction() or 0.0))
            outputs, loss = train_step(model, carry, stream, opt, cfg, generator, ema)
            meter.add(outputs, loss)
            if step % cfg.log_every == 0 or step == cfg.steps:
                stats = meter.summary()
                record = {"kind": "train", "step": step, "elapsed": budget.elapsed(), "lr": lr,
                          **({"reveal": stream.reveal_fraction} if curriculum is not None else {}),
                          "puzzles_seen": stream.served, "epoch": stream.epoch, **stats}
                log.metrics(record)
                history.append(record)
                if progress is not None:
                    progress.update(task_id, stats=f"loss {stats['lm_loss']:.3f} exact {stats['exact_accuracy']:.1%} "
                                                   f"steps {stats['mean_steps']:.1f}")
            if progress is not None:
                progress.update(task_id, completed=step)
            budget.record_step(budget.now() - t_step)
            if step % cfg.eval_every == 0:
                final_eval = run_eval(step)
        if stopped_by == "pause":
            save_state()
        elif last_eval_step != step:
            final_eval = run_eval(step)
        if final_eval is None:  # paused, or resumed right after the run's last evaluation
            final_eval = next((r for r in reversed(history) if r.get("kind") == "eval"), None)

    train_seconds = budget.elapsed()
    if ema is not None:  # the result's model is what the checkpoints hold
        ema.copy_to(model)
    result = TrainResult(out_dir=out, last_checkpoint=ckpt.last,
                         best_checkpoint=ckpt.best if ckpt.best.exists() else None, steps=step,
                         train_seconds=train_seconds, total_seconds=time.perf_counter() - t_call,
                         stopped_by=stopped_by, final_eval=final_eval, best_eval=ckpt.best_eval,
                         num_parameters=num_params, puzzles_seen=stream.served, history=history,
                         model=model.eval())
    log.update_run(result={"steps": step, "train_seconds": train_seconds, "clock": clock,
                           "total_seconds": result.total_seconds,
                           "stopped_by": stopped_by, "final_eval": final_eval, "best_eval": ckpt.best_eval,
                           "puzzles_seen": stream.served, "steps_per_second": step / max(train_seconds, 1e-9)})
    return result


def _restore(saved: dict[str, Any], model: RecursiveModel, opt: OptimizerSet, ema: EMA | None, carry: TrainCarry,
             stream: PuzzleStream, generator: torch.Generator, meter: TrainMeter, budget: TimeBudget,
             ckpt: Checkpointer, clock: str) -> int:
    """Load a ``resume.pt`` state into the freshly built run objects; returns the last evaluated step."""
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizers"])
    if ema is not None:
        ema.load_state_dict(saved["ema"])
    for name, value in saved["carry"].items():
        setattr(carry, name, value.to(getattr(carry, name).device))
    stream.load_state_dict({**saved["stream"], "order": saved["stream"]["order"].numpy()})
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    meter.load_state_dict(saved["meter"])
    if saved["budget"]["clock"] == clock:  # the same clock: the earlier pieces' seconds count
        budget.spent = float(saved["budget"]["spent"])
        budget.last_eval_seconds = saved["budget"]["last_eval_seconds"]
    ckpt.best_value, ckpt.best_eval = saved["best"]["value"], saved["best"]["eval"]
    return int(saved["last_eval_step"])


def _print(console, progress, text: str) -> None:
    if progress is not None:
        progress.console.print(text, soft_wrap=True)
    elif console is not None:
        console.print(text, soft_wrap=True)
