"""Weight files are loaded without running pickled code: an AST scan of the package source.

Every ``torch.load(...)`` call (whatever ``torch`` is imported as) must pass the literal
keyword ``weights_only=True``; ``numpy.load`` must not pass ``allow_pickle`` other than a
literal False; ``pickle`` / ``dill`` / ``joblib`` loaders and ``yaml.load`` / ``yaml.unsafe_load``
are not called at all (``yaml.safe_load`` is).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / 'raydiff_ros'
FORBIDDEN = {
    ('pickle', 'load'), ('pickle', 'loads'), ('pickle', 'Unpickler'),
    ('dill', 'load'), ('dill', 'loads'), ('joblib', 'load'), ('cloudpickle', 'load'),
    ('cloudpickle', 'loads'), ('yaml', 'load'), ('yaml', 'unsafe_load'),
    ('yaml', 'full_load'), ('torch', 'hub.load'), ('numpy', 'fromfile'),
}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> module (``import torch as t`` gives t -> torch; from-imports of names
    give ``load`` -> ``torch.load``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split('.')[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f'{node.module}.{alias.name}'
    return names


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f'{_dotted(node.value)}.{node.attr}'
    return ''


def called_functions(path: Path) -> list[tuple[str, ast.Call]]:
    """(fully qualified callee, call) of every call in ``path`` whose callee is a name path."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = _aliases(tree)
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (dotted := _dotted(node.func)):
            head, _, rest = dotted.partition('.')
            qualified = aliases.get(head, head) + (f'.{rest}' if rest else '')
            calls.append((qualified, node))
    return calls


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_calls(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Descriptions of the unsafe loading calls in one source file (named relative to root)."""
    problems = []
    for qualified, call in called_functions(path):
        where = f'{path.relative_to(root)}:{call.lineno}'
        module, _, function = qualified.partition('.')
        if qualified == 'torch.load':
            flag = _keyword(call, 'weights_only')
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f'{where}: torch.load without weights_only=True')
        elif qualified in ('numpy.load', 'numpy.lib.npyio.load'):
            flag = _keyword(call, 'allow_pickle')
            if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                problems.append(f'{where}: numpy.load with allow_pickle not False')
        elif (module, function) in FORBIDDEN:
            problems.append(f'{where}: {qualified} can run code from the file')
    return problems


def test_the_package_loads_no_file_through_pickle():
    sources = sorted(PACKAGE.rglob('*.py'))
    assert len(sources) > 50
    problems = [problem for path in sources for problem in unsafe_calls(path)]
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('source, expected', [
    ('import torch\ntorch.load(p)\n', 'without weights_only'),
    ('import torch as t\nt.load(p, weights_only=False)\n', 'without weights_only'),
    ('from torch import load\nload(p, weights_only=flag)\n', 'without weights_only'),
    ('import numpy as np\nnp.load(p, allow_pickle=True)\n', 'allow_pickle'),
    ('import pickle\npickle.loads(b)\n', 'run code'),
    ('import yaml\nyaml.load(text, Loader=yaml.Loader)\n', 'run code'),
    ('import torch\ntorch.load(p, map_location="cpu", weights_only=True)\n', None),
    ('import numpy as np\nnp.load(p, allow_pickle=False)\nnp.load(p)\n', None),
])
def test_the_scan_finds_unsafe_calls(tmp_path, source, expected):
    path = tmp_path / 'module.py'
    path.write_text(source)
    problems = unsafe_calls(path, tmp_path)
    if expected is None:
        assert not problems
    else:
        assert problems and all(expected in problem for problem in problems), problems
