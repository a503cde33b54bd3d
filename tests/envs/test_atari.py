"""Atari game names in every usual spelling, and the nine-game suite."""

from __future__ import annotations

import pytest

from rl_coordconv.envs import ATARI9, canonical_game, resolve_games


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Pong", "Pong"),
        ("pong", "Pong"),
        ("ms_pacman", "MsPacman"),
        ("ALE/MsPacman-v5", "MsPacman"),
        ("SpaceInvadersNoFrameskip-v4", "SpaceInvaders"),
        ("BankHeist", "BankHeist"),
        ("bank_heist", "BankHeist"),
    ],
)
def test_game_names_in_every_usual_spelling(name, expected):
    assert canonical_game(name) == expected


def test_unknown_game_suggests_close_names_and_lists_the_suite():
    with pytest.raises(ValueError, match=r"unknown game 'Pnog'; did you mean Pong\?.*ATARI9 = Asteroids"):
        canonical_game("Pnog")


def test_atari9_is_the_documented_suite_and_installed():
    assert ATARI9 == (
        "Asteroids", "BankHeist", "BeamRider", "Breakout", "MsPacman", "Pong", "Qbert", "Seaquest", "SpaceInvaders"
    )  # fmt: skip
    assert [canonical_game(g) for g in ATARI9] == list(ATARI9)
    assert resolve_games(["atari9", "Pong", "breakout"]) == list(ATARI9)
    assert resolve_games(["Pong", "ms_pacman"]) == ["Pong", "MsPacman"]
