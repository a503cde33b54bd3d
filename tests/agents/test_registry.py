"""The algorithm registry: overrides parsed, never evaluated; unknown names refused; every algo built with AtariCNN."""

from __future__ import annotations

import pytest
from helpers import quadrant_envs

from rl_coordconv.agents import ALGOS, algo_spec, make_model, parse_overrides, resolve_hyperparams


def test_overrides_are_parsed_not_evaluated():
    assert parse_overrides(["n_steps=8", "learning_rate=lin_1e-3", "gamma=0.995", "normalize_advantage=true"]) == {
        "n_steps": 8,
        "learning_rate": "lin_1e-3",
        "gamma": 0.995,
        "normalize_advantage": True,
    }
    assert parse_overrides(["ent_coef=__import__('os').system('false')"]) == {
        "ent_coef": "__import__('os').system('false')"
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["n_steps"])


def test_unknown_hyperparameter_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"a2c has no hyperparameter 'n_step'.*n_steps"):
        resolve_hyperparams("a2c", {"n_step": 8})
    with pytest.raises(ValueError, match="lin_<number>"):
        resolve_hyperparams("a2c", {"learning_rate": "lin_fast"})
    with pytest.raises(ValueError, match=r"unknown algo 'a3c'; choose from a2c, ppo, dqn, qrdqn"):
        algo_spec("a3c")


@pytest.mark.parametrize("algo", list(ALGOS))
def test_every_registered_algo_builds_with_atari_cnn(algo):
    overrides = {"buffer_size": 100} if algo in ("dqn", "qrdqn") else {}
    model = make_model(algo, quadrant_envs(), resolve_hyperparams(algo, overrides), coordconv=True, device="cpu")
    names = [type(m).__name__ for m in model.policy.modules()]
    assert "AtariCNN" in names and "CoordConv2d" in names
