"""Atari environments (game names, the nine-game suite, fast vectorized envs for SB3) and Catch."""

from rl_coordconv.envs.atari import (
    ATARI9,
    ATARI_PROTOCOL,
    action_meanings,
    all_games,
    canonical_game,
    frames_per_step,
    game_protocol,
    make_ale_env,
    observation_space,
    resolve_games,
    rom_id,
)
from rl_coordconv.envs.catch import CATCH, CatchVecEnv, random_policy_score
from rl_coordconv.envs.vector import BACKENDS, AtariVecEnv, make_atari_vec_env

__all__ = [
    "ATARI9",
    "ATARI_PROTOCOL",
    "BACKENDS",
    "CATCH",
    "AtariVecEnv",
    "CatchVecEnv",
    "action_meanings",
    "all_games",
    "canonical_game",
    "frames_per_step",
    "game_protocol",
    "make_ale_env",
    "make_atari_vec_env",
    "observation_space",
    "random_policy_score",
    "resolve_games",
    "rom_id",
]
