"""A game protocol that changes gets a new version, so runs of different games never mix."""

from __future__ import annotations

from dataclasses import asdict

from rl_coordconv.envs import ATARI_PROTOCOL
from rl_coordconv.envs.catch import CATCH_PROTOCOL

# Every protocol version ever played, field by field. Changing what a game is (a field's value,
# or the adapter's behaviour) means a new version here and in the dataclass, never an edit of
# an old entry: runs record their protocol, and resume, sweep and plot refuse to mix versions.
ATARI_VERSIONS = {
    1: dict(frame_skip=4, noop_max=30, screen_size=84, frame_stack=4, repeat_action_probability=0.0,
            max_frames_per_game=108_000),
    2: dict(frame_skip=4, noop_max=30, screen_size=84, frame_stack=4, repeat_action_probability=0.0,
            max_frames_per_game=108_000),
}  # fmt: skip
CATCH_VERSIONS = {1: dict(rows=7, columns=7, cell=12, frame_stack=4, frame_skip=1)}


def test_the_current_protocols_are_the_newest_recorded_versions():
    for protocol, versions in ((asdict(ATARI_PROTOCOL), ATARI_VERSIONS), (asdict(CATCH_PROTOCOL), CATCH_VERSIONS)):
        version = protocol.pop("version")
        assert version == max(versions), f"protocol version {version} is not recorded here; add it"
        assert protocol == versions[version], (
            f"the fields of protocol version {version} changed: bump its version and record the new one"
        )
