"""The README's Python example runs as written (with fewer steps)."""

import json
import re
from pathlib import Path

from sslscope.models import BACKBONES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    block = re.search(r"<!-- example:python-api -->\n```python\n(.*?)```", text, re.S).group(1)
    assert len([line for line in block.splitlines() if line.strip()]) <= 13
    assert "steps=300" in block
    monkeypatch.chdir(tmp_path)
    try:
        quick = "steps=4, warmup_steps=1, eval_points=0, projector_dims=(32, 16)"
        exec(block.replace("steps=300", quick), {})
    finally:
        BACKBONES.pop("tiny_mlp", None)
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["name"] == "raw pixels" and (tmp_path / "runs" / "api" / "report.html").exists()
