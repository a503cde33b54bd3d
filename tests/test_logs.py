"""What a run logs: torn episodes.csv lines, TensorBoard events truncated on resume, scalars.csv."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import episode_rows

from rl_coordconv.logs import (
    SCALARS_FILE,
    EpisodeLog,
    RunRecorder,
    read_episodes,
    read_scalars,
    truncate_events,
    write_scalars,
)
from rl_coordconv.runs import RunDir, RunStateError


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("agent_step,frames,wall_time,return,length\n10,40,0.5,3,7\n20,80,1.0,4,")  # killed mid-write
    assert [row["agent_step"] for row in read_episodes(path)] == ["10"]


@pytest.mark.parametrize("order", ["writer_order", "reversed"])
def test_a_resume_keeps_the_same_games_in_episodes_csv_and_tensorboard(tmp_path, order):
    """Whatever order readers take the event files in (their names sort by second, host, pid, then a
    counter, so writer 10 sorts before writer 9), TensorBoard shows what episodes.csv holds."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    first = RunRecorder(run)
    for step in (90, 100, 110):  # a game ends on the checkpoint step (100), one after it
        first.episode(step, float(step), 10)
    first.close()  # the attempt dies; the resume starts from the checkpoint at step 100
    if order == "reversed":  # the first attempt's file sorts after any the resumed writer makes
        (old,) = run.path.glob("events.out.tfevents.*")
        old.rename(run.path / "events.out.tfevents.9999999999.host.1.9")
    EpisodeLog.truncate_after(run.episodes_path, 100)
    second = RunRecorder(run, start_step=100)
    second.episode(120, 120.0, 10)
    second.close()
    events = EventAccumulator(str(run.path))
    events.Reload()
    csv_steps = [int(row["agent_step"]) for row in episode_rows(run.episodes_path)]
    assert csv_steps == [e.step for e in events.Scalars("charts/episodic_return")] == [90, 100, 120]
    assert [step for step, _ in read_scalars(run.path)["charts/episodic_return"]] == [90, 100, 120]


def test_truncating_events_twice_or_after_a_crash_keeps_each_point_once(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    recorder = RunRecorder(run)
    for step in (10, 20, 30):
        recorder.scalars(step, {"losses/x": float(step)})
    recorder.close()
    (original,) = run.path.glob("events.out.tfevents.*")
    shutil.copy(original, tmp_path / "copy")
    assert truncate_events(run.path, 20) == 2
    shutil.copy(tmp_path / "copy", original)  # a crash before the old file was deleted
    assert truncate_events(run.path, 20) == 2
    assert len(list(run.path.glob("events.out.tfevents.*"))) == 1
    assert read_scalars(run.path)["losses/x"] == [(10, 10.0), (20, 20.0)]


def _write_events(run: Path, scalars: dict[str, list[tuple[int, float]]]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run))
    for tag, points in scalars.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()


def test_scalars_csv_keeps_every_scalar_but_the_per_game_ones(tmp_path):
    run, copy = tmp_path / "run", tmp_path / "copy"
    logged = {
        "losses/entropy_loss": [(10, -1.792), (20, -1.791759), (30, -1.6)],
        "coordconv/coord_weight_ratio": [(10, 0.987654321)],
        "charts/episodic_return": [(12, -21.0), (25, -20.0)],  # episodes.csv holds these
    }
    _write_events(run, logged)
    copy.mkdir()
    assert write_scalars(run, copy / SCALARS_FILE)
    assert not list(copy.glob("events.out.tfevents.*"))
    assert set(read_scalars(run)) == set(logged)
    read = read_scalars(copy)
    assert set(read) == {"losses/entropy_loss", "coordconv/coord_weight_ratio"}
    for tag, points in read.items():
        expected = logged[tag]
        assert [step for step, _ in points] == [step for step, _ in expected]
        assert [value for _, value in points] == pytest.approx([value for _, value in expected], rel=1e-5)
    assert not write_scalars(copy, tmp_path / "none.csv") and not (tmp_path / "none.csv").exists()


def test_a_run_without_scalars_or_with_a_bad_scalars_csv_is_one_clear_error(tmp_path):
    with pytest.raises(RunStateError, match=r"no TensorBoard event files .* and no scalars\.csv"):
        read_scalars(tmp_path)
    (tmp_path / SCALARS_FILE).write_text("tag,step,value\nlosses/entropy_loss,10,-1.79\nlosses/entropy_loss,ten,-1\n")
    with pytest.raises(RunStateError, match=r"scalars\.csv line 3 is not a row of \(tag, step, value\)"):
        read_scalars(tmp_path)


def test_games_name_their_actor_and_a_run_begun_without_the_column_keeps_its_columns(tmp_path):
    path = tmp_path / "episodes.csv"
    log = EpisodeLog(path, actors=True)
    log.write(100, 400, 1.0, -21, 800, actor=1)
    log.write(200, 800, 2.0, -20, 810, actor=0)
    log.close()
    assert [(r["agent_step"], r["actor"]) for r in episode_rows(path)] == [("100", "1"), ("200", "0")]
    assert EpisodeLog.truncate_after(path, 150) == 1
    header = "agent_step,frames,wall_time,return,length,actor"
    assert path.read_text().splitlines() == [header, "100,400,1.000,-21,800,1"]
    older = tmp_path / "older.csv"  # begun before the column: resumed, it goes on without it
    older.write_text("agent_step,frames,wall_time,return,length\n100,400,1.000,-21,800\n")
    log = EpisodeLog(older, actors=True)
    log.write(200, 800, 2.0, -20, 810, actor=0)
    log.close()
    assert older.read_text().splitlines()[-1] == "200,800,2.000,-20,810"
    empty = tmp_path / "empty.csv"  # killed before its header was flushed: resumed, it is begun anew
    empty.touch()
    assert EpisodeLog.truncate_after(empty, 150) == 0
    EpisodeLog(empty, actors=True).close()
    assert empty.read_text().splitlines() == [header]
