"""``python -m dtasm_opt.train`` goes through the shared CLI handling: every bad input is exit
2 with one ``error:`` line, no traceback and no run folder left behind."""

from __future__ import annotations

import pytest

from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.train import build_parser, main


@pytest.fixture
def stream_path(tmp_path):
    path = tmp_path / "s.json"
    files.write_json(path, generate_stream(Scenario(users=5, servers=2, apps=2), 1, 3).to_dict())
    return path


BAD = [
    ["--steps", "x"],
    ["--steps", "0"],
    ["--lr", "inf"],
    ["--lr", "nan"],
    ["--lr", "0"],
    ["--gamma", "2"],
    ["--batch-size", "0"],
    ["--hidden", "0"],
    ["--hidden", "a,b"],
    ["--seed", "-1"],
    ["--stream-seed", "-1"],
    ["--warm-start-steps", "-1"],
    ["--teacher", "bogus", "--warm-start-steps", "2"],
    ["--teacher-second-stage", "sideways"],
    ["--actor", "round"],
    ["--checkpoint-every", "0"],
    ["--no-such-flag"],
]


@pytest.mark.parametrize("extra", BAD, ids=lambda a: " ".join(a))
def test_bad_flags_exit_2_with_one_line(tmp_path, stream_path, capsys, extra):
    out = tmp_path / "run"
    args = [str(stream_path), "--out", str(out), "--no-progress"]
    if "--steps" not in extra:
        args += ["--steps", "3"]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert "Traceback" not in err[0]
    assert not out.exists()  # refused before any file was made


def test_out_onto_a_file_is_refused(tmp_path, stream_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("x")
    assert main([str(stream_path), "--out", str(target), "--steps", "2", "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert main([str(stream_path), "--out", str(target / "sub"), "--steps", "2"]) == 2


def test_help_shows_the_generated_agent_flags_with_defaults(capsys):
    text = " ".join(build_parser().format_help().split())
    for flag in ("--gamma", "--policy-delay", "--mask-infeasible", "--stay-bias", "--teacher"):
        assert flag in text
    assert "(default: 0.1)" in text  # gamma, from TD3Config
    assert "(default: 256,256,256,256)" in text  # hidden


def test_a_short_run_writes_its_files(tmp_path, stream_path, capsys):
    out = tmp_path / "run"
    assert main([str(stream_path), "--out", str(out), "--steps", "4", "--no-progress",
                 "--hidden", "8", "--batch-size", "2", "--learning-starts", "2"]) == 0  # fmt: skip
    assert {p.name for p in out.iterdir()} == {"steps.csv", "last.pt", "policy.pt", "manifest.json"}
