"""The README's promises: its two commands, its CLI reference, and CI calling its test command."""

from pathlib import Path

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
