"""The README's promises: its two commands, its CLI reference, and CI calling its test command."""

from pathlib import Path

import pytest

from scripts.update_readme import END, START, render

ROOT = Path(__file__).resolve().parents[1]


def test_readme_shows_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_cli_reference_matches_help():
    readme = (ROOT / "README.md").read_text()
    assert START in readme and END in readme
    assert render(readme) == readme, "run `make readme` to refresh the CLI reference"


def test_following_the_readme_writes_under_runs_not_into_the_repository():
    """Every output a README command line names (--out, --run-dir), and every default one,
    goes under the git-ignored runs/ (or a benchmark's own folder): a newcomer who pastes the
    examples neither litters the checkout nor overwrites the committed docs/results/."""
    import re

    from sslscope.cli import build_parser
    from sslscope.studies import STUDIES

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    named = [m.group(2) for block in blocks
             for m in re.finditer(r"(--out|--run-dir)[ =](\S+)", block)]
    assert len(named) > 10  # the examples are where this looks
    assert [p for p in named if not p.startswith(("runs/", "RUN", "OUT", "DIR"))] == []

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    defaults = {"compare": sub["compare"].get_default("out"),
                "sweep": sub["sweep"].get_default("out")}
    studies = next(a for a in sub["study"]._actions if a.dest == "name").choices
    defaults |= {f"study {name}": studies[name].get_default("out") for name in STUDIES}
    assert {k: v for k, v in defaults.items() if not v.startswith("runs/")} == {}


@pytest.mark.slow  # the whole demo: about 60 s on 2 cores
def test_the_readme_table_is_what_make_demo_prints(tmp_path):
    """`make demo`'s own command (read from the Makefile), run into a temporary directory,
    prints the README's table digit for digit, on the processor the README names (another
    one may round differently, and is skipped)."""
    import shlex
    import subprocess
    import sys

    from sslscope.runs import cpu_name

    readme = (ROOT / "README.md").read_text()
    table = readme.split("`make demo` ends with a table like this one", 1)[1]
    table = table.split("```\n", 2)[1].strip()
    caption = readme.split(table, 1)[1][:400]
    if f"2-core {cpu_name()}," not in caption:
        pytest.skip(f"the README's table was measured on another processor than {cpu_name()}")
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndemo: $(STAMP)\n\t", 1)[1].splitlines()[0]
    command = shlex.split(recipe.replace("$(BIN)/sslscope", "sslscope"))
    command = [arg if arg != "runs/demo" else str(tmp_path / "demo") for arg in command]
    assert command[:2] == ["sslscope", "train"] and str(tmp_path / "demo") in command
    done = subprocess.run([sys.executable, "-m", *command, "--no-progress"], cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("test accuracy"))
    end = lines.index("", start)
    assert "\n".join(lines[start:end]) == table
