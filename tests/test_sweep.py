"""tools/sweep.py and paintproc_jax/sweeps.py: config sweeps expand to valid, uniquely named train commands;
the flags parse back through config_flags; bad keys fail early; --run keeps sweep.json, stops, resumes."""

import json
import pathlib
import shlex
import subprocess
import sys
import textwrap

import pytest

from paintproc_jax import sweeps

ROOT = pathlib.Path(__file__).resolve().parents[1]
SWEEP = [sys.executable, str(ROOT / "tools" / "sweep.py")]
CONFIGS = [("tiny", None), ("tiny", "loomis"), ("animatepainter", None), ("animatepainter", "tiny"), ("loomis", None), ("loomis", "tiny")]

# Parses argv with ml_collections.config_flags as a train script would; prints the overridden values as JSON.
PROBE = textwrap.dedent("""
    import json, sys
    from absl import app, flags
    from ml_collections.config_flags import config_flags, config_path
    _CONFIG = config_flags.DEFINE_config_file("config", lock_config=True)
    flags.DEFINE_string("workdir", None, "")
    def main(argv):
        keys = [a.split("=", 1)[0][len("--config."):] for a in sys.argv if a.startswith("--config.")]
        print(json.dumps({k: config_path.get_value(k, _CONFIG.value) for k in keys}))
    app.run(main)
""")

# A config whose sweep touches every value type the command line must carry.
TYPES_CONFIG = textwrap.dedent("""
    from paintproc_jax.presets import tiny_config
    def get_config(arg=None):
        return tiny_config()
    def get_sweep(arg=None):
        return {
            "types": [
                {"data.crop_scale": [0.5, 1.0], "data.orders": ("layer-major",), "data.source": "my dir/it's",
                 "diffusion.shift": 2, "diffusion.logit_mean": -0.5, "data.strokes": 16, "model.depth_fusion": False},
                {"data.source": "my+dir/it's"}, {"data.source": "My dir/it's"}, {}, {"sample.guidance.ref": 3.0},
            ],
            "badkey": [{"model.depth_fusion": False}, {"model.no_such_field": 1}],
            "nosection": [{"nosection.lr": 1e-4}],
            "badtype": [{"model.depth_fusion": 0.5}],
            "boolfloat": [{"diffusion.shift": True}],
            "same": [{"data.strokes": 8}, {"data.strokes": 8}],
        }[arg]
""")


def sweep_cli(*args, cwd=ROOT):
    return subprocess.run(SWEEP + [str(a) for a in args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture(scope="module")
def types_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "types.py"
    path.write_text(TYPES_CONFIG)
    return path


def test_product_order_and_errors():
    runs = sweeps.product({"a.x": (1, 2)}, **{"b.y": ["p", "q", "r"]})
    assert len(runs) == 6 and runs[0] == {"a.x": 1, "b.y": "p"} and runs[3] == {"a.x": 2, "b.y": "p"}
    assert sweeps.product() == [{}]
    with pytest.raises(ValueError, match="non-empty"):
        sweeps.product({"a.x": ()})
    with pytest.raises(ValueError, match="non-empty"):
        sweeps.product({"a.x": "ab"})
    with pytest.raises(ValueError, match="twice"):
        sweeps.product({"a.x": (1,)}, **{"a.x": (2,)})


@pytest.mark.parametrize("name, arg", CONFIGS)
def test_config_sweeps_expand(name, arg):
    spec = f"configs/{name}.py" + (f":{arg}" if arg else "")
    runs = sweeps.expand(str(ROOT / spec), "/tmp/root")  # validates every key and value (raises otherwise)
    assert len(runs) == 4
    names = [r["name"] for r in runs]
    assert len({n.lower() for n in names}) == 4
    assert all(n and n.replace("_", "").replace("-", "").replace(".", "").replace("+", "").isalnum() for n in names)
    for r in runs:
        assert r["command"][:2] == ["python", "tools/train.py"]
        assert r["command"][r["command"].index("--workdir") + 1] == f"/tmp/root/{r['name']}"


def test_run_names():
    assert sweeps.run_names([{"model.depth_fusion": False, "train.optim.lr": 3e-4}]) == ["depth_fusion-False_lr-0.0003"]
    assert sweeps.run_names([{"sample.guidance.ref": 1.0, "model.ref": 2}]) == ["guidance.ref-1.0_model.ref-2"]
    assert sweeps.run_names([{"a": "x y"}, {"a": "x+y"}, {"a": "X y"}, {}]) == ["a-x+y", "a-x+y-2", "a-X+y-3", "base"]
    long = sweeps.run_names([{f"k{i}": "v" * 20 for i in range(8)}])[0]
    assert len(long) <= sweeps.MAX_NAME


def test_printed_commands_parse_back_through_config_flags(types_config, tmp_path):
    out = sweep_cli("--config", f"{types_config}:types", "--workdir_root", tmp_path / "root", "--", "--config.data.batch_size=2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("# sweep: 5 runs")
    commands = [shlex.split(line) for line in lines[1:]]
    names = [pathlib.Path(c[c.index("--workdir") + 1]).name for c in commands]
    assert names[0].startswith("crop_scale-0.5+1.0_orders-layer-major_source-my+dir+it+s_")
    assert names[1:] == ["source-my+dir+it+s", "source-My+dir+it+s-2", "base", "ref-3.0"]
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    got = json.loads(subprocess.run([sys.executable, str(probe), *commands[0][2:]], capture_output=True, text=True,
                                    timeout=60, cwd=ROOT, check=True).stdout)
    assert got == {"data.crop_scale": [0.5, 1.0], "data.orders": ["layer-major"], "data.source": "my dir/it's",
                   "diffusion.shift": 2.0, "diffusion.logit_mean": -0.5, "data.strokes": 16, "model.depth_fusion": False,
                   "data.batch_size": 2}


def test_real_config_commands_parse_back(tmp_path):
    out = sweep_cli("--config", "configs/loomis.py:tiny", "--workdir_root", tmp_path)
    assert out.returncode == 0, out.stderr
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    cmd = shlex.split(out.stdout.strip().splitlines()[-1])
    got = json.loads(subprocess.run([sys.executable, str(probe), *cmd[2:]], capture_output=True, text=True,
                                    timeout=60, cwd=ROOT, check=True).stdout)
    assert got == {"data.cross_media": 0.3, "diffusion.p_drop_ref": 0.1}


@pytest.mark.parametrize("arg, match", [
    ("badkey", r"types.py:badkey get_sweep\(\) run 1 .*unknown key 'model.no_such_field': no 'no_such_field' in model"),
    ("nosection", r"unknown key 'nosection.lr': no 'nosection' in the config \(it has: data, "),
    ("badtype", r"model.depth_fusion=0.5 does not fit"),
    ("boolfloat", r"diffusion.shift=True does not fit"),
    ("same", r"runs 0 and 1 have the same overrides"),
])
def test_bad_sweeps_fail_before_running(types_config, arg, match):
    with pytest.raises(sweeps.SweepError, match=match):
        sweeps.expand(f"{types_config}:{arg}", "/tmp/root")


def test_cli_errors_exit_2_and_run_nothing(types_config, tmp_path):
    out = sweep_cli("--config", f"{types_config}:badkey", "--workdir_root", tmp_path / "r", "--run")
    assert out.returncode == 2 and "unknown key 'model.no_such_field'" in out.stderr and str(types_config) in out.stderr
    assert not (tmp_path / "r").exists()
    out = sweep_cli("--config", "configs/data.py", "--workdir_root", tmp_path / "r")
    assert out.returncode == 2 and "has no get_sweep" in out.stderr
    out = sweep_cli("--config", "configs/tiny.py", "--workdir_root", tmp_path / "r", "--", "--config.model.attention=full")
    assert out.returncode == 2 and "conflicts with the sweep" in out.stderr


def _fake_train(log):
    """A train command that logs its workdir and fails (exit 3) for the factorized-attention runs."""
    code = (f"import sys; a = sys.argv; open({str(log)!r}, 'a').write(a[a.index('--workdir') + 1] + '\\n'); "
            "sys.exit(3 if '--config.model.attention=factorized' in a else 0)")
    return shlex.join(["python", "-c", code])


def _statuses(root):
    return [(r["status"], r["exit_code"]) for r in json.loads((root / "sweep.json").read_text())["runs"]]


def test_run_stops_keeps_going_and_resumes(tmp_path):
    root, log = tmp_path / "root", tmp_path / "log.txt"
    base = ["--config", "configs/tiny.py", "--workdir_root", root, "--run", "--train_cmd", _fake_train(log)]

    out = sweep_cli(*base)  # runs 3 and 4 use factorized attention: stops at run 3
    assert out.returncode == 3, out.stderr
    assert "sweep: 4 runs, 1 failed (1 not run)" in out.stdout
    assert _statuses(root) == [("ok", 0), ("ok", 0), ("failed", 3), ("pending", None)]
    assert len(log.read_text().splitlines()) == 3

    out = sweep_cli(*base, "--keep_going")  # resumes: skips the two ok runs, runs both failing ones
    assert out.returncode == 3, out.stderr
    assert "sweep: 4 runs, 2 failed (2 already ok)" in out.stdout
    assert _statuses(root) == [("ok", 0), ("ok", 0), ("failed", 3), ("failed", 3)]
    ran = log.read_text().splitlines()
    assert len(ran) == 5 and [pathlib.Path(p).name for p in ran[3:]] == [
        "attention-factorized_objective-flow", "attention-factorized_objective-v"]
    state = json.loads((root / "sweep.json").read_text())
    assert state["config"] == "configs/tiny.py"
    assert state["runs"][0]["overrides"] == {"model.attention": "full", "diffusion.objective": "flow"}

    ok_cmd = shlex.join(["python", "-c", f"open({str(log)!r}, 'a').write('again\\n')"])
    out = sweep_cli(*base[:-1], ok_cmd)  # a fixed train command: only the failed runs run again
    assert out.returncode == 0 and "sweep: 4 runs, 0 failed (2 already ok)" in out.stdout
    assert _statuses(root) == [("ok", 0)] * 4 and log.read_text().count("again") == 2

    out = sweep_cli("--config", "configs/tiny.py:loomis", "--workdir_root", root, "--run", "--train_cmd", ok_cmd)
    assert out.returncode == 2 and "is from --config 'configs/tiny.py'" in out.stderr
