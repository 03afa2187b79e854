"""The helpers every console command shares: parsing without SystemExit, error lines."""

import argparse

from raydiff_ros.cli import common


def tiny_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='raydiff-tiny')
    parser.add_argument('count', type=int)
    return parser


def test_parse_arguments_returns_the_namespace_or_the_exit_code(capsys):
    assert common.parse_arguments(tiny_parser(), ['3']).count == 3
    assert common.parse_arguments(tiny_parser(), ['three']) == common.EXIT_USAGE
    assert "raydiff-tiny: error: argument count: invalid int value: 'three'" in (
        capsys.readouterr().err)
    assert common.parse_arguments(tiny_parser(), ['--help']) == common.EXIT_OK
    assert 'usage: raydiff-tiny' in capsys.readouterr().out


def test_report_error_prints_one_prefixed_line_to_stderr(capsys):
    status = common.report_error('raydiff-tiny', ValueError('no such file'),
                                 common.EXIT_FAILURE)
    assert status == common.EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.err == 'raydiff-tiny: error: no such file\n'
    assert captured.out == ''


def test_exit_codes_are_distinct():
    assert (common.EXIT_OK, common.EXIT_FAILURE, common.EXIT_USAGE) == (0, 1, 2)
