"""The algorithms: a registry (:mod:`.registry`), the trainers that run them (:mod:`.trainer`,
:mod:`.sb3`, :mod:`.apex`), and A2C's fast loop (:mod:`.a2c`)."""

from rl_coordconv.agents.registry import (
    ALGOS,
    AlgoSpec,
    algo_spec,
    load_model,
    load_run_model,
    make_model,
    parse_overrides,
    resolve_hyperparams,
)

__all__ = [
    "ALGOS",
    "AlgoSpec",
    "algo_spec",
    "load_model",
    "load_run_model",
    "make_model",
    "parse_overrides",
    "resolve_hyperparams",
]
