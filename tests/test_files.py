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
