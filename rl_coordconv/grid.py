"""A grid of runs (games × arms × seeds), each an ordinary training run in its usual directory.

:func:`plan` decides, from each run directory, whether a cell starts, resumes, restarts (it
died before its first checkpoint) or is skipped (finished, or in use by another process), and
refuses to mix in a run made with other settings; :func:`run_local` runs the cells as child
processes (``python -m rl_coordconv.train``), ``workers`` at a time, and :func:`run_ray` as Ray
tasks on a cluster. ``python -m rl_coordconv.sweep`` is the command line over it.
"""

from __future__ import annotations

import contextlib
import itertools
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rl_coordconv.cli import exit_code
from rl_coordconv.experiment import TrainConfig, arm_name, identity_mismatch
from rl_coordconv.lifecycle import protocol_mismatch, resolve_config
from rl_coordconv.runs import RunDir, RunStateError
from rl_coordconv.runtime import connect_ray, stop_signals

__all__ = ["ARMS", "RUN_PLACEMENTS", "Cell", "launch", "plan", "run_local", "run_ray"]

RUN_PLACEMENTS = ("local", "ray")

# arm name → (coordconv, with_r, coord_layers)
ARMS: dict[str, tuple[bool, bool, str]] = {
    name: (coordconv, with_r, layers)
    for coordconv, with_r, layers in [
        (False, False, "first"),
        (True, False, "first"),
        (True, True, "first"),
        (True, False, "all"),
        (True, True, "all"),
    ]
    for name in [arm_name(coordconv, with_r, layers)]
}


@dataclass
class Cell:
    """One run of the grid and what the sweep does with it."""

    config: TrainConfig
    overrides: dict[str, Any]  # the --set values the user gave, passed on to train as they are
    action: str  # start | resume | restart | skip | busy, as planned
    status: str = "pending"  # pending | running | done | failed | skipped | busy | interrupted
    returncode: int | None = None
    started: float = 0.0
    process: Any = field(default=None, repr=False)

    @property
    def run(self) -> RunDir:
        return self.config.run_dir()

    @property
    def label(self) -> str:
        c = self.config
        return f"{c.game}/{c.arm}/seed{c.seed}"

    def progress(self) -> int:
        try:
            return int(self.run.read_state().get("agent_steps", 0))
        except (ValueError, OSError):
            return 0


def launch(config: TrainConfig, overrides: dict[str, Any]) -> list[str] | None:
    """``train`` arguments for one cell, decided from its directory *now*; None if there is nothing to do.

    Deciding at launch rather than at planning time makes a relaunched task (a Ray retry after a
    lost node, a second sweep) resume what the first attempt left instead of tripping over it.
    """
    action = _decide(config)
    if action in ("skip", "busy"):
        return None
    if action == "restart":  # died before its first checkpoint: nothing to keep
        shutil.rmtree(config.run_dir().path)
    c = config
    coordconv, with_r, layers = ARMS[arm_name(c.coordconv, c.with_r, c.coord_layers)]
    args = ["--algo", c.algo, "--game", c.game, "--seed", str(c.seed), "--timesteps", str(c.timesteps)]
    args += ["--n-envs", str(c.n_envs), "--env-backend", c.env_backend, "--device", c.device]
    args += ["--log-dir", c.log_dir, "--checkpoint-every", str(c.checkpoint_every), "--no-progress"]
    args += ["--coordconv"] * coordconv + ["--with-r"] * with_r + ["--coord-layers", layers, "--head", c.head]
    if c.actors_on != "local":
        args += ["--actors-on", c.actors_on] + (["--ray-address", c.ray_address] if c.ray_address else [])
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    return [*args, "--resume"] if action == "resume" else args


def plan(
    base: TrainConfig, games: list[str], arms: list[str], seeds: list[int], heads: Sequence[str] = ("flatten",)
) -> list[Cell]:
    """Expand the grid (seeds × games × heads × arms) and decide, from each run directory, what to do with every cell.

    :raises ValueError: unknown arm, or an existing run made with other settings
    """
    for arm in arms:
        if arm not in ARMS:
            raise ValueError(f"unknown arm {arm!r}; choose from {', '.join(ARMS)}")
    cells = []
    # Seeds outermost: a sweep stopped a third of the way has every game and arm once, not a third of the games.
    for seed, game, head, arm in itertools.product(seeds, games, heads, arms):
        coordconv, with_r, layers = ARMS[arm]
        config = replace(base, game=game, coordconv=coordconv, with_r=with_r, coord_layers=layers, head=head, seed=seed)
        config = resolve_config(replace(config, hyperparams=dict(base.hyperparams)))
        cells.append(Cell(config, dict(base.hyperparams), _decide(config)))
    return cells


def _decide(config: TrainConfig) -> str:
    run = config.run_dir()
    status = run.status()
    if status is None:
        return "start"
    if run.in_use():
        return "busy"
    stored = run.read_config()
    mismatch = protocol_mismatch(stored) or identity_mismatch(stored, config)
    if mismatch is not None:
        raise ValueError(f"the run in {run.path} {mismatch}; use another --log-dir or delete that run")
    if status == "finished":
        return "skip"
    try:
        run.latest_checkpoint()
    except RunStateError:
        return "restart"
    return "resume"


def _table(cells: list[Cell], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, expand=False)
    for column in ("run", "action", "status", "steps", "elapsed"):
        table.add_column(column, justify="right" if column in ("steps", "elapsed") else "left")
    for cell in cells:
        steps = cell.progress()
        pct = f" ({100 * steps / cell.config.timesteps:.0f}%)" if cell.config.timesteps else ""
        elapsed = f"{(time.monotonic() - cell.started) / 60:.1f} min" if cell.status == "running" else ""
        table.add_row(cell.label, cell.action, cell.status, f"{steps:,}{pct}", elapsed)
    return table


def _summary(cells: list[Cell]) -> int:
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.status] = counts.get(cell.status, 0) + 1
    print("sweep: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    unfinished = [cell for cell in cells if cell.status in ("failed", "interrupted")]
    for cell in unfinished:
        print(f"  {cell.status}: {cell.label} (exit {cell.returncode}); log: {cell.run.path / 'train.log'}")
    return 1 if unfinished else 0


def run_local(cells: list[Cell], workers: int, live: bool | None = None) -> int:
    """Run the cells as child processes, ``workers`` at a time; return 0 if none failed.

    Ctrl-C or SIGTERM (``kill``, a scheduler) starts no more runs and stops those still going, each
    at a checkpoint (a second Ctrl-C: at once); the sweep then exits 130 or 143, and the same
    command goes on from there. Called outside the main thread, where Python cannot handle
    signals, it does not hear them."""
    from rich.console import Console
    from rich.live import Live

    for cell in cells:
        if cell.action in ("skip", "busy"):
            cell.status = "skipped" if cell.action == "skip" else "busy"
    console = Console()
    show = console.is_terminal if live is None else live
    display = Live(_table(cells, "sweep"), console=console, refresh_per_second=1) if show else None
    stops: list[int] = []  # the signal that asked the sweep to stop
    with stop_signals(stops.append):
        try:
            if display is not None:
                display.start()
            _run_cells(cells, workers, display, stops)
            _stop_runs(_running(cells))  # none, unless a stop was asked
        except KeyboardInterrupt:  # a second Ctrl-C, outside the wait for the runs' checkpoints
            _stop_now(_running(cells))
        finally:
            if display is not None:
                display.update(_table(cells, "sweep"), refresh=True)
                display.stop()
    code = _summary(cells)
    if stops and any(cell.status in ("pending", "interrupted") for cell in cells):
        what = "Ctrl-C" if stops[0] == signal.SIGINT else signal.Signals(stops[0]).name
        print(f"sweep stopped by {what}; run the same command again to continue", file=sys.stderr)
        return 128 + stops[0]
    return code


def _run_cells(cells: list[Cell], workers: int, display: Any, stops: list[int]) -> None:
    """Start the pending cells as workers free up, until all have ended or a stop is asked (``stops``)."""
    queue = [cell for cell in cells if cell.status == "pending"]
    running: list[Cell] = []
    last_print = 0.0
    while (queue or running) and not stops:
        while queue and len(running) < workers and not stops:
            cell = queue.pop(0)
            args = launch(cell.config, cell.overrides)
            if args is None:
                cell.status = "skipped"
                continue
            cell.process = _start_train(cell.run, args)
            cell.started, cell.status = time.monotonic(), "running"
            running.append(cell)
        time.sleep(1.0)
        for cell in list(running):
            code = cell.process.poll()
            if code is not None:
                _ended(cell)
                running.remove(cell)
                if display is None:
                    print(f"{cell.status}: {cell.label} ({(time.monotonic() - cell.started) / 60:.1f} min)")
        if display is not None:
            display.update(_table(cells, "sweep"))
        elif time.monotonic() - last_print > 300 and running:
            last_print = time.monotonic()
            print("running: " + ", ".join(f"{c.label} {c.progress():,}" for c in running), flush=True)


def _running(cells: list[Cell]) -> list[Cell]:
    """The cells started and not yet seen to end (some may have ended since)."""
    return [cell for cell in cells if cell.status == "running" and cell.process is not None]


def _ended(cell: Cell) -> None:
    """Record how a started cell's run ended (its process has been polled or waited for)."""
    assert cell.process is not None and cell.process.returncode is not None
    cell.returncode = cell.process.returncode
    cell.status = _status(cell.returncode)


def _stop_runs(running: list[Cell]) -> None:
    """Ask each running run to stop (SIGTERM: it writes a checkpoint first) and wait for it; a second
    Ctrl-C meanwhile stops them at once (:func:`_stop_now`)."""
    if not running:
        return
    what = "1 run" if len(running) == 1 else f"{len(running)} runs"
    print(f"stopping {what}, each at a checkpoint (Ctrl-C again: stop now)", file=sys.stderr)
    try:
        for cell in running:
            cell.process.terminate()
        for cell in running:
            cell.process.wait()
    except KeyboardInterrupt:
        _stop_now(running)
    for cell in running:
        _ended(cell)


def _stop_now(running: list[Cell]) -> None:
    """Stop the runs at once, losing what each did since its last checkpoint: a run stops at once on
    its second signal if that is a Ctrl-C, so each gets SIGTERM (a run already asked ignores it),
    then a moment later SIGINT (sent together, a run would see the SIGINT first, as the first
    request). Ctrl-C from a terminal reaches its runs directly too. Each then closes its actors and
    envs; one that has not ended after a minute is killed."""
    print(f"stopping {len(running)} run(s) now, without a checkpoint", file=sys.stderr)
    for cell in running:
        cell.process.terminate()
    time.sleep(1.0)
    for cell in running:
        cell.process.send_signal(signal.SIGINT)
    for cell in running:
        try:
            cell.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cell.process.kill()
            cell.process.wait()
        _ended(cell)


def _status(returncode: int) -> str:
    """A run's outcome from its exit code: done, interrupted (stopped by Ctrl-C or SIGTERM), failed."""
    if returncode == 0:
        return "done"
    stopped = {128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM}
    return "interrupted" if returncode in stopped else "failed"


def _start_train(run: RunDir, args: list[str]) -> subprocess.Popen[bytes]:
    """``python -m rl_coordconv.train ARGS`` as a child process, its output appended to the run's train.log."""
    run.path.mkdir(parents=True, exist_ok=True)
    with (run.path / "train.log").open("a") as log:
        command = [sys.executable, "-m", "rl_coordconv.train", *args]
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _ray_task(config: TrainConfig, overrides: dict[str, Any]) -> int:
    """One run in a Ray worker, in its process (so cancelling the task stops the run), its output
    appended to the run's train.log as a local run's is."""
    from rl_coordconv.lifecycle import train
    from rl_coordconv.runtime import tune_malloc

    args = launch(config, overrides)
    if args is None:
        return 0
    tune_malloc()
    command = shlex.join(["python", "-m", "rl_coordconv.train", *args])
    run = config.run_dir()
    run.path.mkdir(parents=True, exist_ok=True)
    with (run.path / "train.log").open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        return exit_code(lambda: train(config, resume="--resume" in args, command=command))


def run_ray(cells: list[Cell], address: str | None, gpus_per_run: float | None = None) -> int:
    """Submit every cell as a Ray task to the cluster at ``address`` (see :func:`connect_ray`)."""
    ray = connect_ray(address, option="--runs-on ray")
    if gpus_per_run is None:
        gpus_per_run = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_run, max_retries=2)(_ray_task)
    pending = {}
    try:
        for cell in cells:
            if cell.action in ("skip", "busy"):
                cell.status = "skipped" if cell.action == "skip" else "busy"
                continue
            pending[task.remote(cell.config, cell.overrides)] = cell
            cell.status, cell.started = "running", time.monotonic()
        print(f"submitted {len(pending)} runs to Ray ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)", flush=True)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(done[0])
            try:
                cell.returncode = int(ray.get(done[0]))
            except Exception as error:  # a task that raised or whose node died for good
                print(f"  {cell.label}: {error}", file=sys.stderr)
                cell.returncode = 1
            cell.status = _status(cell.returncode)
            print(f"{cell.status}: {cell.label} ({(time.monotonic() - cell.started) / 60:.1f} min)", flush=True)
    except KeyboardInterrupt:
        for ref, cell in pending.items():  # each run keeps its checkpoints; the next sweep resumes it
            with contextlib.suppress(Exception):  # a lost connection: the cluster stops the tasks itself
                ray.cancel(ref, force=True)
            cell.status = "interrupted"
        print("sweep stopped by Ctrl-C; run the same command again to continue", file=sys.stderr)
        return 130
    return _summary(cells)
