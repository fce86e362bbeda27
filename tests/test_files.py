"""Reading what a crash or a careless edit leaves: JSON lines, safetensors, atomic writes.

Targets asserted: a trailing partial line and a corrupt middle line of a JSON-lines file cost
only themselves (every valid row after them is kept); a binary file or a non-object line is one
sentence; a safetensors reader refuses a foreign file with one sentence; an atomic write that
fails leaves the old file and no temporary file behind.
"""

import json

import pytest

from sslscope.errors import UserError
from sslscope.files import atomic_write, read_jsonl, read_tensors


def test_corrupt_lines_cost_only_themselves(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s} for s in range(1, 6)]
    lines = [json.dumps(r) for r in rows]
    lines[2] = lines[2][:5] + "\x00garbage"  # a damaged middle line
    path.write_text("\n".join(lines) + '\n{"step": 6, "tra')  # and a crash mid-append
    assert read_jsonl(path) == [rows[0], rows[1], rows[3], rows[4]]


@pytest.mark.parametrize("content, sentence", [
    (b"\x80\x04\x95 not text", "is not a JSON-lines text file"),
    (b'{"step": 1}\n[1, 2]\n', "should hold one JSON object per line, found list"),
])
def test_a_foreign_jsonl_is_one_sentence(tmp_path, content, sentence):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=sentence):
        read_jsonl(path)


def test_a_foreign_safetensors_file_is_one_sentence(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 20)
    with pytest.raises(UserError, match="is not a readable safetensors file .*; delete it"):
        read_tensors(path, "delete it")


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("old")

    def full_disk(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, full_disk)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_an_append_cut_short_by_a_full_disk_leaves_whole_lines(tmp_path, monkeypatch):
    import errno
    import os

    from sslscope.files import append_jsonl

    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1})
    real_write = os.write

    def half_then_full(fd, data):  # the kernel wrote part of the line, then the disk was full
        if len(data) > 4:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sslscope.files.os.write", half_then_full)
    with pytest.raises(OSError) as failed:
        append_jsonl(path, {"step": 2, "train/loss": 1.5})
    assert failed.value.errno == errno.ENOSPC and failed.value.filename == str(path)
    monkeypatch.undo()
    assert path.read_text() == '{"step": 1}\n'  # the half line is cut back off
    append_jsonl(path, {"step": 2})
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]


def test_run_json_is_rewritten_in_place_when_the_disk_has_no_room_for_a_copy(tmp_path,
                                                                             monkeypatch):
    import errno

    from sslscope.runs import RunFiles, update_run_info

    files = RunFiles(tmp_path)
    update_run_info(files, status="running", checkpoint_step=5)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "run.json")

    monkeypatch.setattr("sslscope.runs.atomic_write_json", full)
    update_run_info(files, status="failed")
    assert json.loads(files.run_info.read_text()) == {"status": "failed", "checkpoint_step": 5}
    monkeypatch.setattr("sslscope.runs.atomic_write_json",
                        lambda *a: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only")))
    with pytest.raises(OSError):  # read-only: in place would fail too, and is not tried
        update_run_info(files, status="interrupted")
