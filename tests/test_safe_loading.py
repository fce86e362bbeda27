"""No file the program reads can run code: a planted pickle is refused with one sentence.

Targets asserted: a pickle whose unpickling would create a marker file, planted in turn under
every file name of a finished run directory (configs, metrics, checkpoints, arrays, the export)
and of a CIFAR data folder, is refused by every command that reads that file (`report`, `eval`,
`train --resume`, `export`, `load_encoder`, `train --config`, CIFAR loading) with status 2 and
one sentence, never a traceback, and the marker never appears.
"""

import pickle
import shutil

import pytest

from sslscope.cli import main
from sslscope.data import load_dataset
from sslscope.errors import UserError
from sslscope.export import load_encoder


class Exploit:
    """Unpickling this calls ``open(marker, "w")``: code run by merely loading a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(path, marker):
    path.write_bytes(pickle.dumps(Exploit(marker)))


def attempt(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("sslscope: error: ") and len(err.strip().splitlines()) == 1, err
    return code


@pytest.fixture(scope="module")
def exported_run(finished_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(finished_run, run)
    assert main(["export", str(run)]) == 0
    return run


# Which commands read each file of a run directory (glob → commands); every one must refuse.
READERS = {
    "config.json": ["eval", "export", "resume", "config"],
    "run.json": ["report"],
    "metrics.jsonl": ["report", "resume"],
    "evaluation.json": ["report"],
    "checkpoints/*.safetensors": ["eval", "export", "resume"],
    "arrays/*.safetensors": ["report"],
    "export/*": ["load_encoder"],
}


def commands(run, fresh):
    return {"eval": ["eval", str(run), "--device", "cpu"], "export": ["export", str(run)],
            "report": ["report", str(run)],
            "resume": ["train", "--resume", str(run), "--no-progress"],
            "config": ["train", "--config", str(run / "config.json"), "--run-dir", str(fresh),
                       "--no-progress"]}


def test_a_planted_pickle_never_runs_in_a_run_directory(exported_run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    names = sorted(p.relative_to(exported_run) for p in exported_run.rglob("*")
                   if p.is_file() and p.suffix in {".json", ".jsonl", ".safetensors"})
    assert len(names) >= 8, names
    tried = 0
    for name in names:
        readers = [r for pattern, rs in READERS.items() if name.match(pattern) for r in rs]
        assert readers, f"{name}: which command reads it?"
        run = tmp_path / "run"
        shutil.copytree(exported_run, run)
        plant(run / name, marker)
        for reader in readers:
            if reader == "load_encoder":
                with pytest.raises(UserError):
                    load_encoder(run / "export")
            else:
                assert attempt(capsys, commands(run, tmp_path / "fresh")[reader]) == 2, (
                    name, reader)
            assert not marker.exists(), (name, reader)
            tried += 1
        shutil.rmtree(run)
    assert tried >= 15


def test_a_planted_pickle_never_runs_in_the_cifar_folder(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                 "data_batch_5", "test_batch", "batches.meta"]:
        plant(folder / name, marker)
    with pytest.raises(UserError, match="refusing to load|not a"):
        load_dataset("cifar10", tmp_path / "data")
    assert not marker.exists()
