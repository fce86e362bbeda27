"""A disk that fills up, or turns read-only, under a training: a real tmpfs, not a mock.

Each case runs ``sslscope train`` in a private mount namespace (``unshare``) whose run directory
sits on a tmpfs of a few kilobytes to a few megabytes, so the disk fills at a different write
each time: run.json at the start, the instrument arrays, a checkpoint, a metrics row, the final
embeddings, a figure, report.html. Targets asserted, for every size:

- exit status 2 and one sentence (``sslscope: error: ...``) naming the file, no traceback;
- every file left loads: JSON parses, every metrics line is whole, safetensors open, no
  temporary file is left;
- run.json never says "running": "failed" (with the sentence), or "finished" when only the
  report was lost; a start that cannot write leaves nothing;
- the run resumes from what the disk kept once it has room (a copy on the real disk).

Skipped where no mount namespace can be made (neither root nor unprivileged user namespaces).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

TRAIN = ["train", "--preset", "smoke", "--backbone", "linear:8", "--device", "cpu",
         "--no-progress", "--log-every", "1", "--checkpoint-every", "5", "--steps", "40",
         "--warmup-steps", "0"]
# Mount a tmpfs of $1 on $2, train into $2/run, copy what is left to $3, exit with train's status.
# With $4 = "ro", remount the tmpfs read-only once 10 metrics rows are written.
SCRIPT = r"""
mount -t tmpfs -o size="$1" tmpfs "$2" || exit 99
disk="$2"; kept="$3"; mode="$4"; shift 4
"$@" --run-dir "$disk/run" > "$kept.out" 2> "$kept.err" &
pid=$!
if [ "$mode" = ro ]; then
  while kill -0 $pid 2>/dev/null; do
    if [ -f "$disk/run/metrics.jsonl" ] && [ "$(wc -l < "$disk/run/metrics.jsonl")" -ge 10 ]; then
      mount -o remount,ro "$disk"; break
    fi
    sleep 0.05
  done
fi
wait $pid; rc=$?
[ -d "$disk/run" ] && cp -a "$disk/run" "$kept"
exit $rc
"""


def _namespace() -> list[str] | None:
    """The unshare prefix that gives a private mount namespace here, or None."""
    if shutil.which("unshare") is None:
        return None
    prefixes = [["unshare", "--mount", "--propagation", "private"]] if os.geteuid() == 0 else []
    prefixes.append(["unshare", "--user", "--map-root-user", "--mount"])
    for prefix in prefixes:
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return prefix
    return None


NAMESPACE = _namespace()
pytestmark = pytest.mark.skipif(NAMESPACE is None, reason="no mount namespace can be made here")


def train_on_small_disk(tmp_path: Path, size: str, mode: str = "full"):
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [*NAMESPACE, "sh", "-c", SCRIPT, "sh", size, str(disk), str(kept), mode,
               sys.executable, "-m", "sslscope", *TRAIN]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode != 99, done.stderr
    err = Path(f"{kept}.err").read_text()
    return done.returncode, err, kept


def assert_whole(run: Path) -> dict:
    """Every file of ``run`` loads; returns run.json."""
    assert not [p for p in run.rglob("*.tmp")], "a temporary file was left"
    for path in run.rglob("*.json"):
        json.loads(path.read_text())
    for path in run.glob("metrics.jsonl"):  # absent when the disk filled before the first row
        for line in path.read_text().splitlines():
            json.loads(line)  # whole lines only: a failed append is cut back off
    for path in run.rglob("*.safetensors"):
        load_file(str(path))
    return json.loads((run / "run.json").read_text())


def assert_one_sentence(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and all(line.startswith("sslscope: ") for line in lines), err
    errors = [line for line in lines if line.startswith("sslscope: error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.slow  # eight trainings, one per disk size: about 40 s
@pytest.mark.parametrize("size", ["4k", "12k", "24k", "100k", "160k", "240k", "800k", "2m"])
def test_a_full_disk_at_any_write_is_one_sentence_and_every_file_loads(tmp_path, size):
    code, err, kept = train_on_small_disk(tmp_path, size)
    assert code == 2, err
    sentence = assert_one_sentence(err)
    assert "No space left on device writing " in sentence, sentence
    if not kept.exists():  # the first write failed: nothing is left behind
        assert "nothing was written" in sentence
        return
    info = assert_whole(kept)
    if info["status"] == "finished":  # only the report was lost, and the sentence says so
        assert "the run finished, but its report was not written" in sentence
        assert "sslscope report" in sentence
    else:
        assert info["status"] == "failed" and info["error"] in sentence
        kept_step = info.get("checkpoint_step")
        assert ("then continue with sslscope train --resume" in sentence) == bool(kept_step)


def test_training_resumes_from_what_a_full_disk_kept(tmp_path):
    code, err, kept = train_on_small_disk(tmp_path, "110k")
    sentence = assert_one_sentence(err)
    assert code == 2 and "training stopped at step" in sentence, err
    info = assert_whole(kept)
    saved = info["checkpoint_step"]
    assert info["status"] == "failed" and 0 < saved < 40
    resumed = subprocess.run([sys.executable, "-m", "sslscope", "train", "--resume", str(kept),
                              "--no-progress", "--stop-at", str(saved + 3)],
                             capture_output=True, text=True, check=False,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    steps = [json.loads(line)["step"] for line in (kept / "metrics.jsonl").open()
             if "train/loss" in line]
    assert steps == list(range(1, saved + 4))  # none lost, none twice


@pytest.mark.slow
def test_a_disk_turned_read_only_mid_run_is_one_sentence(tmp_path):
    code, err, kept = train_on_small_disk(tmp_path, "64m", mode="ro")
    assert code == 2, err
    sentence = assert_one_sentence(err)
    assert "Read-only file system writing " in sentence, sentence
    assert "make the run directory writable" in sentence
    info = assert_whole(kept)
    assert info["status"] == "running"  # run.json itself cannot change on a read-only disk
