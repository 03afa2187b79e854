"""The helpers every console command shares: parsing, error lines, progress bars, echo."""

import argparse
import io
import sys

import pytest

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


class TerminalStream(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_only(monkeypatch):
    pipe = io.StringIO()
    monkeypatch.setattr(sys, 'stderr', pipe)
    with common.progress_bar('render', total=3, unit='set') as bar:
        bar.update(3)
    assert pipe.getvalue() == ''
    terminal = TerminalStream()
    monkeypatch.setattr(sys, 'stderr', terminal)
    with common.progress_bar('render', total=3, unit='set', initial=1) as bar:
        bar.update(2)
    drawn = terminal.getvalue()
    assert 'render' in drawn and '3/3' in drawn and 'set' in drawn


def test_echo_prints_the_line_to_stdout_while_a_bar_runs(monkeypatch, capsys):
    terminal = TerminalStream()
    monkeypatch.setattr(sys, 'stderr', terminal)
    with common.progress_bar('train', total=2, unit='it') as bar:
        common.echo('[1/2] loss 0.5')
        bar.update(2)
    assert capsys.readouterr().out == '[1/2] loss 0.5\n'
    assert '2/2' in terminal.getvalue()


def test_estimator_names_are_registered_names_or_python_plugins():
    check = common.estimator_name()
    assert check('classical_sift') == 'classical_sift'
    assert check('python:node_scenarios:make_oracle') == 'python:node_scenarios:make_oracle'
    with pytest.raises(argparse.ArgumentTypeError, match="'sift' is not one of .*random"):
        check('sift')
    assert common.estimator_name()('noisy_oracle') == 'noisy_oracle'
    with pytest.raises(argparse.ArgumentTypeError, match='noisy_oracle'):
        common.estimator_name(include_ground_truth=False)('noisy_oracle')


def test_raydiff_eval_runs_a_python_plugin_estimator(shared_dir, tmp_path, capsys):
    from raydiff_ros.cli.evaluate import main
    status = main([str(shared_dir / 'data' / 'temple_ring'), '--estimator',
                   'python:node_scenarios:make_failing_estimator', '--num-views', '2',
                   '--sets-per-n', '1', '--output', str(tmp_path / 'o')])
    assert status == 2 and 'FileNotFoundError' in capsys.readouterr().err
    assert main([str(shared_dir / 'data' / 'temple_ring'), '--estimator', 'sift',
                 '--output', str(tmp_path / 'o')]) == 2
    assert "'sift' is not one of" in capsys.readouterr().err


def test_the_estimator_help_describes_every_registered_name():
    text = common.estimator_help()
    assert 'classical_sift: SIFT matches' in text and 'ground_truth: ' in text
    assert text.endswith('or python:<module>:<factory>')
    assert 'ground_truth' not in common.estimator_help(include_ground_truth=False)


def test_estimator_options_keep_their_yaml_types_and_reach_the_estimator(shared_dir, tmp_path,
                                                                         capsys):
    parser = argparse.ArgumentParser(prog='raydiff-tiny')
    common.add_option_argument(parser)
    args = parser.parse_args(['--option', 'matcher=aliked', '--option', 'max_pairs=12',
                              '--option', 'bundle_adjustment=false'])
    assert dict(args.options) == {'matcher': 'aliked', 'max_pairs': 12,
                                  'bundle_adjustment': False}
    with pytest.raises(argparse.ArgumentTypeError, match='KEY=VALUE'):
        common.estimator_option('matcher')
    from raydiff_ros.cli.evaluate import main
    status = main([str(shared_dir / 'data' / 'temple_ring'), '--estimator', 'matches',
                   '--option', 'no_such_option=1', '--num-views', '2', '--sets-per-n', '1',
                   '--output', str(tmp_path / 'o')])
    assert status == 2 and 'no_such_option' in capsys.readouterr().err
