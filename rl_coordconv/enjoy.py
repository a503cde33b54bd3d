"""Watch a trained agent: ``python -m rl_coordconv.enjoy RUN_DIR [--episodes N] [--video FILE]``.

Loads the run's final model (or ``--checkpoint``), plays whole games with the evaluation protocol
(a game is all its lives, rewards unclipped, the same frame processing as in training) and prints
each raw score, then their mean ± standard deviation. ``--video`` records the games as an MP4
(needs the ``video`` extra: ``pip install 'rl-coordconv[video]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rl_coordconv.agents import load_run_model
from rl_coordconv.cli import HelpFormatter
from rl_coordconv.envs import make_atari_vec_env
from rl_coordconv.runs import RunStateError

__all__ = ["main", "play"]


def play(
    run_dir: Path,
    episodes: int = 5,
    checkpoint: Path | None = None,
    video: Path | None = None,
    deterministic: bool = False,
    seed: int = 12345,
    device: str = "auto",
) -> list[float]:
    """Play ``episodes`` whole games with a trained agent and return their raw scores.

    :param run_dir: a run directory written by ``train``
    :param episodes: games to play
    :param checkpoint: a model zip to load instead of the final model
    :param video: write an MP4 of the games here
    :param deterministic: greedy actions instead of sampling from the policy
    :param seed: env seed (kept apart from training seeds)
    :param device: torch device
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {episodes}")
    config, model = load_run_model(run_dir, checkpoint, device)
    writer = None
    if video is not None:
        try:
            import imageio.v2 as imageio
        except ImportError as error:
            raise ValueError("--video needs the video extra: pip install 'rl-coordconv[video]'") from error
        writer = imageio.get_writer(str(video), fps=30, macro_block_size=1)
    # Video needs RGB frames, which only the sb3 backend renders; its protocol is the same.
    backend = "sb3" if video is not None else config.get("env_backend", "ale")
    env = make_atari_vec_env(
        config["game"],
        1,
        seed=seed,
        backend=backend,
        training=False,
        render_mode="rgb_array" if video is not None else None,
    )
    scores: list[float] = []
    try:
        obs = env.reset()
        while len(scores) < episodes:
            action, _ = model.predict(obs, deterministic=deterministic)  # type: ignore[arg-type]
            obs, _, _, infos = env.step(action)
            if writer is not None:
                frame = env.render()
                if frame is not None:
                    writer.append_data(frame)
            episode = infos[0].get("episode")
            if episode is not None:
                scores.append(float(episode["r"]))
                print(f"game {len(scores)}: score {episode['r']:g}")
    finally:
        env.close()
        if writer is not None:
            writer.close()
    mean, std = np.mean(scores), np.std(scores)
    print(f"{config['game']} {config.get('arm', '')}: {mean:.1f} ± {std:.1f} over {len(scores)} games")
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rl_coordconv.enjoy", description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a run directory, e.g. runs/a2c/Pong/coordconv/seed0")
    parser.add_argument("--episodes", type=int, default=5, help="whole games to play")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a model zip instead of the final model")
    parser.add_argument("--video", type=Path, default=None, help="record the games to this MP4 file")
    parser.add_argument("--deterministic", action="store_true", help="greedy actions")
    parser.add_argument("--seed", type=int, default=12345, help="seeds the games (apart from training seeds)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    try:
        play(args.run_dir, args.episodes, args.checkpoint, args.video, args.deterministic, args.seed, args.device)
    except (ValueError, RunStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
