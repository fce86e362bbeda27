"""The same config and seed give the same run, bit for bit, on the CPU.

Targets asserted: two runs of one config (same seed, same thread count) log identical metrics
(wall-clock times aside) and save identical weights and evaluation; `sslscope train --config
RUN/config.json --threads T`, T the thread count run.json recorded, reproduces a run exactly;
run.json records the versions, the seed's config, the git revision and the thread count.
"""

import json

import torch
from safetensors.torch import load_file

from sslscope.cli import main
from sslscope.files import read_jsonl

TINY = ["--preset", "smoke", "--backbone", "linear:8", "--instruments", "spectrum",
        "--instrument-points", "4", "--eval-points", "2", "--device", "cpu", "--no-progress",
        "--steps", "12", "--warmup-steps", "1", "--log-every", "1", "--seed", "7"]


def metrics(run):
    return [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(run / "metrics.jsonl")]


def same_tensors(a, b):
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_a_config_file_reproduces_its_run_bit_for_bit(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        assert main(["train", *TINY, "--run-dir", str(tmp_path / "a")]) == 0
        info = json.loads((tmp_path / "a" / "run.json").read_text())
        assert {"sslscope_version", "torch", "python", "git_sha", "threads"} <= set(info)
        saved = json.loads((tmp_path / "a" / "config.json").read_text())
        assert saved["seed"] == 7 and saved["steps"] == 12
        assert main(["train", "--config", str(tmp_path / "a" / "config.json"), "--threads",
                     str(info["threads"]), "--run-dir", str(tmp_path / "b"),
                     "--no-progress"]) == 0
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    a, b = tmp_path / "a", tmp_path / "b"
    assert metrics(a) == metrics(b)
    assert same_tensors(a / "checkpoints" / "last.safetensors",
                        b / "checkpoints" / "last.safetensors")
    assert same_tensors(a / "arrays" / "spectrum.safetensors",
                        b / "arrays" / "spectrum.safetensors")
    evaluation = [json.loads((r / "evaluation.json").read_text()) for r in (a, b)]
    assert evaluation[0] == evaluation[1]
