"""Atari game names, the default nine-game suite, and the preprocessing protocol.

One protocol in every env backend, that of OpenAI baselines and SB3's ``AtariWrapper``
(Mnih et al., 2015; Machado et al., 2018 for the terms):

- ``NoFrameskip`` ROMs with sticky actions off (``repeat_action_probability=0``), minimal action set;
- up to 30 no-ops after each reset, then FIRE and action 2 in games whose action 1 is FIRE,
  at every episode start (after a life loss too, in training, after a NOOP);
- frame skip 4 with a max-pool over the last two frames, 84×84 grayscale, a stack of 4 frames;
- a game is cut at 108,000 frames (30 minutes of play);
- for training only: the loss of a life ends the (training) episode, without resetting the game,
  and rewards are clipped to their sign.

The return that is logged is always the raw, unclipped score of a whole game, all lives.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from ale_py import roms

from rl_coordconv.envs.catch import CATCH, CATCH_ACTIONS, CATCH_PROTOCOL

# At import, not inside a function: SB3's SubprocVecEnv workers unpickle env factories defined
# here, and they can only `gym.make("ALE/...")` if this registration ran in their process too.
gym.register_envs(ale_py)

__all__ = [
    "ATARI9",
    "ATARI_PROTOCOL",
    "AtariProtocol",
    "action_meanings",
    "all_games",
    "canonical_game",
    "frames_per_step",
    "game_protocol",
    "make_ale_env",
    "observation_space",
    "resolve_games",
    "rom_id",
]

# The paper's nine games are not named anywhere in its text. This set is the seven games of the
# DQN-2013 paper minus Enduro (where A2C scores 0), plus MsPacman and Asteroids, and BankHeist, a
# maze game where absolute position matters. Seven (all but BankHeist and MsPacman) have published
# rl-zoo3 A2C scores; all nine are in the PPO paper's Table 6 (A2C at 40M frames).
ATARI9 = (
    "Asteroids",
    "BankHeist",
    "BeamRider",
    "Breakout",
    "MsPacman",
    "Pong",
    "Qbert",
    "Seaquest",
    "SpaceInvaders",
)


@dataclass(frozen=True)
class AtariProtocol:
    """The preprocessing every backend applies (see the module docstring for sources).

    ``version`` names what changed, so runs of different protocols are never resumed or averaged
    together: 1 pressed FIRE on the agent step after a life loss and kept the frame stack;
    2 plays SB3's reset actions (NOOP, FIRE, action 2) and zero-fills the stack at episode starts.
    """

    version: int = 2
    frame_skip: int = 4
    noop_max: int = 30
    screen_size: int = 84
    frame_stack: int = 4
    repeat_action_probability: float = 0.0
    max_frames_per_game: int = 108_000


ATARI_PROTOCOL = AtariProtocol()


def _camel(rom: str) -> str:
    return "".join(part.capitalize() for part in rom.split("_"))


def _known_roms() -> dict[str, str]:
    """CamelCase name → ALE ROM id, for every ROM that ships in the installed ale-py."""
    return {_camel(rom): rom for rom in roms.get_all_rom_ids()}


def all_games() -> list[str]:
    """Every game the installed ALE can run, CamelCase."""
    return sorted(_known_roms())


def canonical_game(name: str) -> str:
    """The canonical CamelCase name of a game given in any usual spelling.

    Accepts ``Pong``, ``pong``, ``ms_pacman``, ``ALE/MsPacman-v5``, ``MsPacmanNoFrameskip-v4``,
    and ``Catch`` (:mod:`rl_coordconv.envs.catch`, not an Atari game).

    :param name: the game as a user typed it
    :return: e.g. ``MsPacman``
    :raises ValueError: for a name no installed ROM matches, with close names and ``ATARI9``
    """
    if name.strip().lower() == CATCH.lower():
        return CATCH
    known = _known_roms()
    text = name.strip()
    text = re.sub(r"^ALE/", "", text)
    text = re.sub(r"(NoFrameskip|Deterministic)?-v\d+$", "", text)
    key = text.replace("_", "").replace("-", "").lower()
    by_key = {game.lower(): game for game in known}
    if key in by_key:
        return by_key[key]
    close = difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(by_key[c] for c in close)}? " if close else ""
    raise ValueError(
        f"unknown game {name!r}; {hint}the default suite is ATARI9 = {', '.join(ATARI9)} (and {CATCH}, a test task)"
    )


def rom_id(game: str) -> str:
    """The ALE ROM id (snake_case) of a game, e.g. ``MsPacman`` → ``ms_pacman``."""
    return _known_roms()[canonical_game(game)]


def resolve_games(names: list[str]) -> list[str]:
    """Expand ``atari9`` and canonicalise the rest, keeping order and dropping repeats.

    :param names: game names and/or the word ``atari9``
    :return: canonical names
    """
    games: list[str] = []
    for name in names:
        for game in ATARI9 if name.lower() == "atari9" else (canonical_game(name),):
            if game not in games:
                games.append(game)
    return games


def action_meanings(game: str) -> list[str]:
    """Names of a game's minimal action set, e.g. ``['NOOP', 'FIRE', 'RIGHT', 'LEFT']``."""
    if canonical_game(game) == CATCH:
        return list(CATCH_ACTIONS)
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ale = ale_py.ALEInterface()
    path = roms.get_rom_path(rom_id(game))
    assert path is not None  # rom_id only returns ids of installed ROMs
    ale.loadROM(path)
    return [action.name for action in ale.getMinimalActionSet()]


def make_ale_env(game: str, render_mode: str | None = None) -> gym.Env:
    """One raw ALE game, no frame skip, sticky actions off: the input SB3's ``AtariWrapper`` expects.

    A module-level function, so SB3's ``SubprocVecEnv`` workers can unpickle it (and with it the
    ALE registration above).

    :param game: canonical game name
    :param render_mode: ``rgb_array`` to record video
    """
    return gym.make(
        f"ALE/{game}-v5",
        frameskip=1,
        repeat_action_probability=ATARI_PROTOCOL.repeat_action_probability,
        full_action_space=False,
        max_num_frames_per_episode=ATARI_PROTOCOL.max_frames_per_game,
        render_mode=render_mode,
    )


def game_protocol(game: str) -> dict[str, Any]:
    """The protocol a game is played under, as recorded in a run's ``config.yaml``."""
    return asdict(CATCH_PROTOCOL if canonical_game(game) == CATCH else ATARI_PROTOCOL)


def observation_space(game: str) -> gym.spaces.Box:
    """The stacked-frames observation space a game is played in, ``(stack, height, width)`` uint8."""
    if canonical_game(game) == CATCH:
        shape = (CATCH_PROTOCOL.frame_stack, *CATCH_PROTOCOL.screen)
    else:
        p = ATARI_PROTOCOL
        shape = (p.frame_stack, p.screen_size, p.screen_size)
    return gym.spaces.Box(0, 255, shape, np.uint8)


def frames_per_step(game: str) -> int:
    """Frames per agent step: the Atari frame skip (4), or 1 for Catch."""
    return CATCH_PROTOCOL.frame_skip if canonical_game(game) == CATCH else ATARI_PROTOCOL.frame_skip
