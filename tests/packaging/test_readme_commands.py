"""The README's two commands: CI (`.ci/run`) runs exactly the second one, and both are one line each."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _two_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    # the first two blocks; the section goes on with the GPU variant
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)][:2]


def test_the_readme_has_two_one_line_commands():
    commands = _two_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    assert "stylize-video" in commands[0] and "pytest" in commands[1]


def test_ci_runs_exactly_the_readmes_test_command():
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert _two_commands()[1] in lines
