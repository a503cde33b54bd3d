"""Atari environments: game names, the nine-game suite, and fast vectorized envs for SB3."""

from rl_coordconv.envs.atari import (
    ATARI9,
    ATARI_PROTOCOL,
    action_meanings,
    all_games,
    canonical_game,
    make_ale_env,
    resolve_games,
    rom_id,
)
from rl_coordconv.envs.vector import BACKENDS, AtariVecEnv, make_atari_vec_env

__all__ = [
    "ATARI9",
    "ATARI_PROTOCOL",
    "BACKENDS",
    "AtariVecEnv",
    "action_meanings",
    "all_games",
    "canonical_game",
    "make_ale_env",
    "make_atari_vec_env",
    "resolve_games",
    "rom_id",
]
