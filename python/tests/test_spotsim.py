"""The package against the command line: same values, same errors, same
folder safety. The command line is `target/release/spotsim` (or $SPOTSIM_BIN);
CI's examples step has already run every experiment at -n 3 into
$SPOTSIM_CLI_RESULTS, which these tests reuse instead of running it again."""

import json
import os
import signal
import subprocess
import threading
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import spotsim

ROOT = Path(__file__).resolve().parents[2]
ALL = sorted((ROOT / "experiments").glob("*.toml"))
# A closed-loop load test's users make its traffic: `loadtest` runs it, not `run`.
CLOSED_LOOP = [p for p in ALL if tomllib.loads(p.read_text()).get("loadtest", {}).get("users")]
EXPERIMENTS = [p for p in ALL if p not in CLOSED_LOOP]
CLI = Path(os.environ.get("SPOTSIM_BIN", ROOT / "target" / "release" / "spotsim"))
REPS = 3


def cli(*args):
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build it with `cargo build --release`, or set SPOTSIM_BIN")
    done = subprocess.run([str(CLI), *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def csv(path):
    return pd.read_csv(path)


def same(frame, path):
    """Exact equality with pandas.read_csv of the CLI's file, dtypes included (NaN equals NaN)."""
    assert_frame_equal(frame, csv(path), check_exact=True)


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory):
    """The CLI's result folder of an experiment at -n 3."""
    given = os.environ.get("SPOTSIM_CLI_RESULTS")
    base = Path(given) if given else tmp_path_factory.mktemp("cli")

    def folder(name):
        out = base / name
        manifest = out / "manifest.json"
        if not (manifest.exists() and json.loads(manifest.read_text())["experiment"]["replications"] == REPS):
            cli("run", f"experiments/{name}.toml", "-n", REPS, "--quiet", "-o", out)
        return out

    return folder


def test_every_bundled_experiment_is_tested():
    assert len(EXPERIMENTS) >= 10 and len(CLOSED_LOOP) >= 1


@pytest.mark.parametrize("experiment", CLOSED_LOOP, ids=lambda p: p.stem)
def test_closed_loop_load_tests_equal_the_command_line(experiment, tmp_path):
    load = spotsim.loadtest(experiment, progress=False)
    cli("loadtest", experiment.relative_to(ROOT), "--quiet", "-o", tmp_path / "load")
    same(load, tmp_path / "load/loadtest.csv")


# Each experiment at one thread count, the two counts taking turns: results
# that do not depend on the thread count are the Rust suite's to prove
# (tests/suite/determinism.rs); here both counts go through the package.
@pytest.mark.parametrize(
    ("experiment", "threads"), [(p, 1 + k % 2) for k, p in enumerate(EXPERIMENTS)],
    ids=lambda v: v.stem if isinstance(v, Path) else f"{v}-threads",
)
def test_results_equal_the_command_lines_csvs(experiment, threads, cli_run):
    want = cli_run(experiment.stem)
    res = spotsim.run(experiment, replications=REPS, threads=threads, progress=False)
    same(res.summary, want / "summary.csv")
    same(res.replications, want / "replications.csv")
    if (want / "timeline.csv").exists():
        same(res.timeline, want / "timeline.csv")
    else:
        assert res.timeline is None
    assert res.manifest["experiment"] == json.loads((want / "manifest.json").read_text())["experiment"]


def test_the_spec_example_equals_spotsim_run(tmp_path):
    overrides = {"spot.capacity_wait": "1h"}
    res = spotsim.run(ROOT / "experiments/checkpoint-sweep.toml", replications=2000, seed=1, set=overrides, progress=False)
    out = tmp_path / "cli"
    cli("run", "experiments/checkpoint-sweep.toml", "-n", 2000, "--seed", 1, "--set", "spot.capacity_wait=1h", "--quiet", "-o", out)
    same(res.summary, out / "summary.csv")
    same(res.replications, out / "replications.csv")
    # write() gives the command line's bytes.
    res.write(tmp_path / "py")
    for name in ["summary.csv", "replications.csv"]:
        assert (tmp_path / "py" / name).read_bytes() == (out / name).read_bytes()


BAD = """name = "bad"
[training]
instance = "ml.p3.2xlarge"
wrk = "100h"
"""


def test_a_bad_experiment_raises_input_error_with_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(spotsim.InputError) as caught:
        spotsim.run(path, progress=False)
    e = caught.value
    assert (e.file, e.line, e.key) == (str(path), 4, "training.wrk")
    assert "did you mean `work`?" in e.hint and e.message == "unknown key in `training`"
    done = subprocess.run([str(CLI), "check", str(path)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == f"error: {e}\n"
    # The same from text, and from a --set that names no key.
    with pytest.raises(spotsim.InputError) as caught:
        spotsim.check(toml=BAD)
    assert (caught.value.file, caught.value.line) == ("<toml>", 4)
    with pytest.raises(spotsim.InputError) as caught:
        spotsim.check(ROOT / "experiments/checkpoint-sweep.toml", set={"spot.capacity_wiat": "1h"})
    assert caught.value.file == "--set" and "capacity_wait" in caught.value.hint


def test_every_door_refuses_a_closed_loop_file_to_run_with_one_message():
    # Issue 25: `run`, `slurm` and `spotsim.run` share one preparation, so a
    # closed-loop load test gets the same refusal from each.
    path = ROOT / "experiments/llm-closed-loop.toml"
    with pytest.raises(spotsim.InputError) as caught:
        spotsim.run(path, progress=False)
    e = caught.value
    assert e.key == "loadtest.users" and "spotsim loadtest" in e.hint
    for args in (["run", path, "-q", "-o", "never-written"], ["slurm", path, "--tasks", "2"]):
        done = subprocess.run([str(CLI), *map(str, args)], cwd=ROOT, capture_output=True, text=True)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {e}\n"), args
    assert not (ROOT / "never-written").exists()


def test_set_toml_text_and_a_dict_mean_what_the_command_line_means(tmp_path):
    path = ROOT / "experiments/real-spot-v100.toml"  # reads trace files relative to itself
    overrides = {"seed": 7, "sweep.training.checkpoint.interval": ["20m", "1h"]}
    res = spotsim.run(path, replications=20, set=overrides, progress=False)
    out = tmp_path / "cli"
    cli("run", path, "-n", 20, "--set", "seed=7", "--set", 'sweep.training.checkpoint.interval=["20m", "1h"]', "--quiet", "-o", out)
    same(res.summary, out / "summary.csv")
    same(res.replications, out / "replications.csv")
    text = path.read_text()
    from_text = spotsim.run(toml=text, base_dir=path.parent, replications=20, set=overrides, progress=False)
    assert_frame_equal(from_text.summary, res.summary, check_exact=True)
    from_dict = spotsim.run(tomllib.loads(text), base_dir=path.parent, replications=20, set=overrides, progress=False)
    assert_frame_equal(from_dict.replications, res.replications, check_exact=True)


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda p: p.stem)
def test_a_dict_becomes_the_same_toml(experiment):
    d = tomllib.loads(experiment.read_text())
    assert tomllib.loads(spotsim.to_toml(d)) == d


def test_an_interrupted_run_leaves_nothing_behind(tmp_path):
    out = tmp_path / "results" / "long"
    experiment = ROOT / "experiments/checkpoint-sweep.toml"
    # A previous result in the folder stays as it was.
    before = spotsim.run(experiment, replications=5, output=out, progress=False)
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    # About a minute of work, were it not interrupted.
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            spotsim.run(experiment, replications=300_000, output=out, progress=False)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 20
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["results", "long", *files])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    assert before.summary.shape[0] > 0
    # Without a folder: nothing written anywhere, and the interpreter is fine.
    fresh = tmp_path / "fresh"
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        spotsim.run(experiment, replications=300_000, output=fresh, progress=False)
    assert not fresh.exists() and not list(tmp_path.glob(".fresh*"))


def test_a_run_releases_the_gil():
    ticks = 0
    done = threading.Event()

    def work():
        spotsim.run(ROOT / "experiments/checkpoint-sweep.toml", replications=30_000, progress=False)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.01)
    worker.join()
    assert ticks > 20


def test_write_keeps_the_folder_safety_of_run_o(tmp_path):
    res = spotsim.run(ROOT / "experiments/spot-vs-on-demand.toml", replications=10, progress=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(spotsim.InputError, match="spotsim did not write"):
        res.write(mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    res.write(tmp_path / "ok")
    res.write(tmp_path / "ok")  # a spotsim result is replaced whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "ok"]


def test_check_gives_every_point_resolved():
    designs = spotsim.check(ROOT / "experiments/checkpoint-sweep.toml", set={"spot.capacity_wait": "1h"})
    assert len(designs) == 24
    assert designs[0]["swept"] == {"training.checkpoint.interval": "10m", "spot.interruptions.mtbf": "3h"}
    assert designs[0]["spot"]["capacity_wait"] == "1h"
    assert designs[0]["training"]["checkpoint"]["interval_rule"] == "fixed"


def test_a_design_that_turns_requests_away_warns(tmp_path):
    # As `spotsim check` and `run` say it on stderr: a UserWarning naming the line and key.
    with pytest.warns(UserWarning, match=r"--set: inference\.llm\.kv_tokens = 500 is below .* about 80%"):
        spotsim.check(ROOT / "experiments/llm-load-by-gpu.toml", set={"inference.llm.kv_tokens": 500})


def test_recommend_and_loadtest_equal_the_command_line(tmp_path):
    rec = spotsim.recommend(ROOT / "experiments/training-recommendation.toml", budget=20000, progress=False)
    cli("recommend", "experiments/training-recommendation.toml", "--budget", 20000, "--quiet", "-o", tmp_path / "rec")
    same(rec.recommendations, tmp_path / "rec/recommendations.csv")
    same(rec.rounds, tmp_path / "rec/rounds.csv")
    same(rec.summary, tmp_path / "rec/summary.csv")
    assert rec.choice is None or rec.choice["status"] == "best"
    load = spotsim.loadtest(ROOT / "experiments/instance-loadtest.toml", progress=False)
    cli("loadtest", "experiments/instance-loadtest.toml", "--quiet", "-o", tmp_path / "load")
    same(load, tmp_path / "load/loadtest.csv")


def test_catalog_and_profiles():
    catalog = spotsim.catalog()
    assert "ml.p3.2xlarge" in set(catalog["instance"]) and (catalog["price_per_hour"] > 0).all()
    profiles = spotsim.profiles()
    assert {"inference", "training"} <= set(profiles["use"])
