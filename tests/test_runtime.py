"""rl_coordconv.runtime: joining a Ray cluster answers a bad address in seconds; Ctrl-C asks a run to stop."""

from __future__ import annotations

import os
import signal

import pytest
from helpers import heeding_ctrl_c

from rl_coordconv.runtime import connect_ray, stop_signals

WAIT = "RAY_gcs_server_port_wait_time_s"


@pytest.mark.parametrize(
    ("address", "user_value", "seen"),
    [
        ("10.0.0.1:6379", None, "3"),  # joining: three tries, not Ray's twenty
        ("auto", None, "3"),
        ("10.0.0.1:6379", "60", "60"),  # a user's own setting wins
        (None, None, None),  # starting an instance: Ray's own wait for its new GCS
        ("local", None, None),
    ],
)
def test_joining_a_cluster_tries_its_address_three_times_and_restores_the_environment(
    monkeypatch, address, user_value, seen
):
    ray = pytest.importorskip("ray")
    if user_value is None:
        monkeypatch.delenv(WAIT, raising=False)
    else:
        monkeypatch.setenv(WAIT, user_value)
    at_init = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: at_init.append(os.environ.get(WAIT)))
    assert connect_ray(address, option="--actors-on ray") is ray
    assert at_init == [seen]
    assert os.environ.get(WAIT) == user_value


def test_an_unreachable_cluster_is_a_one_line_error(monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.delenv(WAIT, raising=False)

    def refuse(**kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379\nretried 3 times")

    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(ValueError, match=r"^cannot reach a Ray cluster at '10.0.0.1:6379': Failed to connect") as info:
        connect_ray("10.0.0.1:6379", option="--runs-on ray")
    assert "\n" not in str(info.value)
    assert WAIT not in os.environ


@pytest.fixture(autouse=True)
def _ctrl_c_heard():  # as in a terminal, also when pytest runs as a background job
    with heeding_ctrl_c():
        yield


def test_the_first_ctrl_c_or_sigterm_asks_to_stop_a_second_ctrl_c_stops_now_and_later_ones_wait():
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for first in (signal.SIGINT, signal.SIGTERM):
        asked: list[int] = []
        with stop_signals(asked.append):
            signal.raise_signal(first)
            signal.raise_signal(signal.SIGTERM)  # once asked, SIGTERM asks nothing more
            assert asked == [first]
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # the clean-up that KeyboardInterrupt began goes on
        assert {number: signal.getsignal(number) for number in before} == before


@pytest.mark.parametrize("ignored", [signal.SIGINT, signal.SIGTERM])
def test_an_ignored_signal_stays_ignored(ignored):  # e.g. Ctrl-C in a shell's background job, as Python leaves it
    other = signal.SIGTERM if ignored == signal.SIGINT else signal.SIGINT
    previous = signal.signal(ignored, signal.SIG_IGN)
    try:
        asked: list[int] = []
        with stop_signals(asked.append):
            signal.raise_signal(ignored)
            assert signal.getsignal(ignored) == signal.SIG_IGN and asked == []
            signal.raise_signal(other)
            assert asked == [other]
        assert signal.getsignal(ignored) == signal.SIG_IGN
    finally:
        signal.signal(ignored, previous)
