"""``hrm-train``: train an HRM (thin click layer over :func:`hrm.train.train`).

Examples::

    hrm-train --preset sudoku4-tiny                      # ~1 min on a laptop CPU
    hrm-train --preset sudoku9 --time-budget 540         # one H100, ~9 min
    hrm-train --preset sudoku9 --prepare-data            # only generate + cache the data set
    hrm-train --task maze --size 15 --arch hidden_size=128 --arch halt_max_steps=8 --steps 2000
    hrm-train --preset sudoku4-trm --cpu-budget 1800     # TRM (mlp_t), 30 CPU-minutes
    hrm-train --resume runs/sudoku4-trm                  # continue exactly where it stopped
"""

from __future__ import annotations

import shlex
from typing import Any

import click

from hrm.cli.common import handle_errors
from hrm.errors import HRMError


def _parse_arch(values: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--arch")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw)
    return out


# CLI option name -> TrainConfig field, for options that map one to one.
_FIELDS = {
    "task": "task", "size": "size", "init_from": "init_from", "reveal": "reveal",
    "reveal_until": "reveal_until", "data": "data", "n_train": "n_train", "n_eval": "n_eval",
    "difficulty": "difficulty", "data_cache": "data_cache", "workers": "gen_workers", "steps": "steps",
    "batch_size": "batch_size", "lr": "lr", "lr_min_ratio": "lr_min_ratio", "warmup": "lr_warmup_steps",
    "weight_decay": "weight_decay", "puzzle_emb_lr": "puzzle_emb_lr", "optimizer": "optimizer",
    "loss": "loss_type", "eval_every": "eval_every", "eval_batch_size": "eval_batch_size",
    "log_every": "log_every", "out": "out", "ckpt_dtype": "ckpt_dtype", "best_metric": "best_metric",
    "time_budget": "time_budget", "seed": "seed", "device": "device", "forward_dtype": "forward_dtype",
    "threads": "threads", "grad_clip": "grad_clip", "ema_rate": "ema_rate", "cpu_budget": "cpu_budget",
    "pause_at": "pause_at",
}


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--preset", help="Named recipe: sudoku9, maze, sudoku4-tiny, maze-tiny, sudoku4-trm, maze7-trm "
                              "(see --list-presets).")
@click.option("--list-presets", is_flag=True, help="Print the presets and exit.")
@click.option("--task", type=click.Choice(["sudoku", "maze"]), help="Puzzle family.")
@click.option("--size", type=int, help="Sudoku 4 or 9; maze side N.")
@click.option("--data", help="'generated' (default) or an official dataset folder (train/ + test/).")
@click.option("--n-train", type=int, help="Generated training puzzles.")
@click.option("--n-eval", type=int, help="Held-out puzzles for evaluation.")
@click.option("--difficulty", help="Generator difficulty (sudoku: any, easy, medium, hard, mix).")
@click.option("--augment/--no-augment", default=None, help="On-the-fly symmetries of each puzzle.")
@click.option("--data-cache", type=click.Path(file_okay=False), help="Cache folder for generated data.")
@click.option("--workers", type=int, help="Processes for data generation (default: CPU cores, max 16).")
@click.option("--family", type=click.Choice(["hrm", "trm"]),
              help="Architecture family: HRM (H and L stacks) or TRM (one network; TRM's official defaults "
                   "puzzle_emb_len 16, no_ACT_continue).")
@click.option("--arch", multiple=True, metavar="KEY=VALUE", help="Model field, e.g. hidden_size=128, mlp_t=true "
                                                                 "(repeatable).")
@click.option("--steps", type=int, help="Optimizer steps (one per segment).")
@click.option("--batch-size", type=int, help="Slots in the persistent ACT batch.")
@click.option("--lr", type=float, help="Peak learning rate.")
@click.option("--lr-min-ratio", type=float, help="Cosine decay to lr * ratio (1 = constant after warm-up).")
@click.option("--warmup", type=int, help="Linear warm-up steps.")
@click.option("--weight-decay", type=float)
@click.option("--puzzle-emb-lr", type=float, help="LR of the puzzle embedding (sign-SGD).")
@click.option("--optimizer", type=click.Choice(["auto", "adamw", "adam_atan2"]))
@click.option("--loss", type=click.Choice(["stablemax", "softmax"]))
@click.option("--grad-clip", type=float, help="Clip the gradient norm (upstream: off).")
@click.option("--ema/--no-ema", default=None, help="Evaluate and save an EMA of the weights [default: on for TRM (its official recipe), off for HRM].")
@click.option("--ema-rate", type=float, help="EMA decay mu [default 0.999].")
@click.option("--eval-every", type=int, help="Evaluate + checkpoint every N steps.")
@click.option("--eval-batch-size", type=int)
@click.option("--log-every", type=int)
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (checkpoints, metrics.jsonl, run.json).")
@click.option("--ckpt-dtype", type=click.Choice(["fp32", "fp16"]))
@click.option("--best-metric", type=click.Choice(["exact_act", "exact_fixed", "token_act", "token_fixed"]))
@click.option("--time-budget", type=float, metavar="SECONDS", help="Stop in time for a final eval + checkpoint.")
@click.option("--cpu-budget", type=float, metavar="SECONDS",
              help="As --time-budget, in process CPU seconds (fair comparisons on a shared machine).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue the run in this folder exactly (its resume.pt); only run-control options and "
                   "--steps / budgets may be given.")
@click.option("--pause-at", type=int, metavar="STEP", help="Save the resumable state after STEP and stop.")
@click.option("--reveal", type=float, metavar="FRACTION",
              help="Reveal curriculum: give away this fraction of the unknown cells at the start (0 = off).")
@click.option("--reveal-until", type=float, metavar="PROGRESS",
              help="Training progress (0-1] at which the revealed fraction has fallen to 0 [default 0.5].")
@click.option("--init-from", type=click.Path(dir_okay=False),
              help="Start from this checkpoint's weights (fresh optimizer, LR warm-up again); its architecture "
                   "is kept and must match the data and any --arch given.")
@click.option("--seed", type=int)
@click.option("--device", help="auto, cpu, cuda, cuda:N.")
@click.option("--forward-dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]))
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the H/L stacks.")
@click.option("--threads", type=int, help="torch CPU threads.")
@click.option("--progress/--no-progress", default=None, help="Rich progress bar.")
@click.option("--prepare-data", is_flag=True, help="Only generate/cache the data set, then exit.")
@handle_errors
def main(preset, list_presets, family, arch, augment, ema, compile_, progress, prepare_data, resume_dir,
         **options) -> None:
    """Train an HRM or a TRM with the official recipe: deep supervision, the truncated gradient (HRM: 1 step,
    TRM: last cycle), ACT halting (HRM: Q-learning; TRM: BCE on correctness), stablemax; TRM adds the EMA."""
    from rich.console import Console

    console = Console(stderr=True)
    if list_presets:
        _print_presets(console)
        return
    overrides: dict[str, Any] = {_FIELDS[k]: v for k, v in options.items() if v is not None}
    if arch or family:
        overrides["arch"] = {**_parse_arch(arch), **({"arch": family} if family else {})}
    for field_name, value in (("augment", augment), ("ema", ema), ("compile", compile_), ("progress", progress)):
        if value is not None:
            overrides[field_name] = value
    overrides["command"] = _command_line(click.get_current_context())
    try:
        from hrm.train import preset_config, train
        from hrm.train.data import load_data
        from hrm.train.resume import resume_config

        if resume_dir is not None:
            if preset:
                raise click.UsageError("--resume continues a run with its own config; do not pass --preset")
            cfg = resume_config(resume_dir, **overrides)
        else:
            cfg = preset_config(preset, **overrides)
        if prepare_data:
            data = load_data(cfg)
            console.print(f"data ready: {len(data.train)} train / {len(data.eval)} eval puzzles; "
                          f"{data.info['train'].get('cache', '')}")
            return
        result = train(cfg, console=console)
    except (ValueError, RuntimeError) as exc:  # (HRMError goes to handle_errors as it is)
        raise HRMError(str(exc)) from None
    _print_result(console, result)


def _command_line(ctx: click.Context) -> str:
    """The options given on the command line, as one canonical ``hrm-train ...`` string (recorded in
    run.json and the checkpoint so a run can be repeated)."""
    from click.core import ParameterSource

    words = ["hrm-train"]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        if isinstance(param, click.Option) and param.is_flag:
            if param.secondary_opts:
                words.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                words.append(param.opts[0])
        elif isinstance(value, tuple):
            for v in value:
                words += [param.opts[0], str(v)]
        else:
            words += [param.opts[0], str(value)]
    return shlex.join(words)


def _print_presets(console) -> None:
    from rich.table import Table

    from hrm.train.presets import PRESETS

    table = Table("preset", "task", "model", "steps x batch", "lr", "budget")
    for name, p in PRESETS.items():
        a = p["arch"]
        layers = (f"net {a['L_layers']}L" + (" mlp_t" if a.get("mlp_t") else "") if a.get("arch") == "trm"
                  else f"{a['H_layers']}+{a['L_layers']}L")
        model = (f"{a.get('arch', 'hrm').upper()} D{a['hidden_size']} {layers} N{a['H_cycles']} T{a['L_cycles']} "
                 f"M{a['halt_max_steps']}")
        table.add_row(name, f"{p['task']} {p['size']}", model, f"{p['steps']} x {p['batch_size']}", f"{p['lr']:g}",
                      f"{p.get('time_budget') or '-'}")
    console.print(table)


def _print_result(console, result) -> None:
    console.soft_wrap = True
    e = result.final_eval
    console.print(f"[bold]done[/] {result.steps} steps in {result.train_seconds:.0f}s ({result.stopped_by}); "
                  f"{result.num_parameters / 1e6:.2f}M parameters, {result.puzzles_seen} puzzles seen")
    if result.stopped_by == "pause":
        console.print(f"paused; continue with: hrm-train --resume {result.out_dir}")
    if e is None:
        return
    console.print(f"held-out ({int(e['count'])}): exact {e['exact_fixed']:.1%} fixed, {e['exact_act']:.1%} ACT "
                  f"(mean {e['segments_act']:.2f} segments); token {e['token_fixed']:.1%}")
    console.print(f"checkpoints: {result.last_checkpoint}" + (f", {result.best_checkpoint}" if result.best_checkpoint else ""))


if __name__ == "__main__":  # pragma: no cover
    main()
