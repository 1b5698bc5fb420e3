"""tools/benchmark.py and tools/analyze_model.py reject sizes, repeats and threads that are not positive ints
(and a negative warm-up) as usage errors naming the argument and the value, before building any model."""

import importlib.util
from pathlib import Path

import pytest

from detrkit.utils.cli import int_at_least

REPO = Path(__file__).resolve().parents[2]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_tool", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "tool, arguments, message",
    [
        ("benchmark", ["--input-size", "0", "0"], "argument --input-size: '0' is not an int >= 1"),
        ("benchmark", ["--input-size", "800", "-3"], "argument --input-size: '-3' is not an int >= 1"),
        ("benchmark", ["--repeats", "0"], "argument --repeats: '0' is not an int >= 1"),
        ("benchmark", ["--threads", "0"], "argument --threads: '0' is not an int >= 1"),
        ("benchmark", ["--threads", "two"], "argument --threads: 'two' is not an int >= 1"),
        ("benchmark", ["--warmup", "-1"], "argument --warmup: '-1' is not an int >= 0"),
        ("analyze_model", ["--input-size", "0", "0"], "argument --input-size: '0' is not an int >= 1"),
        ("analyze_model", ["--input-size", "1.5", "2"], "argument --input-size: '1.5' is not an int >= 1"),
    ],
)
def test_invalid_numbers_are_usage_errors(tool, arguments, message, capsys):
    parser = load_tool(tool).build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--config-file", "c.py", *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_valid_numbers_parse():
    args = (
        load_tool("benchmark")
        .build_parser()
        .parse_args(
            [
                "--config-file",
                "c.py",
                "--input-size",
                "1",
                "7",
                "--warmup",
                "0",
                "--repeats",
                "1",
                "--threads",
                "3",
            ]
        )
    )
    assert (list(args.input_size), args.warmup, args.repeats, args.threads) == ([1, 7], 0, 1, 3)
    args = load_tool("analyze_model").build_parser().parse_args(["--config-file", "c.py"])
    assert tuple(args.input_size) == (800, 1333)
    assert int_at_least(-2)("-2") == -2
