"""Every command's ``--help`` states each flag's default once, and only where there is one."""

from __future__ import annotations

import importlib

import pytest

COMMANDS = ["generate", "solve", "verify", "rollout", "train", "bound", "study"]


def flag_helps(command: str) -> dict[str, str]:
    """Each option's help text, whitespace folded, by its first flag."""
    text = importlib.import_module(f"dtasm_opt.{command}").build_parser().format_help()
    helps: dict[str, str] = {}
    flag = None
    for line in text.splitlines():
        if line.startswith("  -"):  # an option's first line
            flag = line.split()[0].rstrip(",")
            helps[flag] = line
        elif flag and line.startswith("   "):  # its help, wrapped
            helps[flag] += line
        else:  # a group's title, a blank line, usage
            flag = None
    return {k: " ".join(v.split()) for k, v in helps.items()}


@pytest.mark.parametrize("command", COMMANDS)
def test_no_empty_or_repeated_default(command):
    helps = flag_helps(command)
    assert "-h" in helps and len(helps) >= 3, helps  # the split found the options
    for text in helps.values():
        assert "(default: None)" not in text, text
        assert "(default: False)" not in text, text
        assert text.count("default") <= 1, text


def test_defaults_that_depend_on_the_method_are_named_once():
    helps = flag_helps("solve")
    assert helps["--node-limit"].endswith("(lagrangian's default: 2000)")
    assert helps["--seed"].endswith("(default: 0)")
    assert "none: no limit" in helps["--time-limit"]


def test_engine_work_limits_in_help_are_the_engines():
    """The help states the engine's own defaults, not a copy that drifts from them."""
    from dtasm_opt.solvers.exact import engine, tie_break

    helps = flag_helps("solve")
    assert helps["--node-limit"].endswith(f"(lagrangian's default: {engine.ENGINE_NODE_LIMIT})")
    for flag, value in (
        ("--tree-rounds", tie_break.TREE_ROUNDS),
        ("--open-load-tree-rounds", tie_break.OPEN_LOAD_TREE_ROUNDS),
        ("--column-reach", tie_break.COLUMN_REACH),
        ("--tree-reach", tie_break.TREE_REACH_PROVEN),
        ("--column-rounds", tie_break.COLUMN_ROUNDS),
        ("--neighbourhood-tries", tie_break.NEIGHBOURHOOD_TRIES),
    ):
        assert helps[flag].endswith(f"default: {value})"), helps[flag]
