"""The package's layers point one way, no module imports itself back through others, and no
two public classes share a name.

Read from the source (every ``import`` statement, lazy ones inside functions included), so a
wrong-way import fails here even when no test executes it. ``from P import n`` names the
module ``P.n`` when that is a module, else ``P`` (importing a submodule always runs its
package's ``__init__``; that is not a dependency the module chose).
"""

import ast
from pathlib import Path

PACKAGE = 'raydiff_ros'
SOURCE = Path(__file__).resolve().parents[2] / PACKAGE

# Which top-level parts of the package each part may import (besides itself). The README's
# "Architecture" section shows the same layers.
ALLOWED = {
    'parameter_fields': set(),
    'progress': set(),
    'geometry': set(),
    'model': {'geometry', 'parameter_fields'},
    'estimation': {'geometry', 'parameter_fields'},
    'features': {'geometry', 'estimation'},
    'inference': {'geometry', 'model', 'estimation'},
    'refinement': {'geometry', 'model', 'estimation', 'features', 'inference'},
    'fusion': {'geometry', 'estimation', 'features', 'inference', 'refinement'},
    'pipeline': {'geometry', 'estimation', 'parameter_fields'},
    'calibration': {'geometry', 'pipeline'},
    'simulation': {'geometry'},
    'data': {'geometry', 'model', 'progress'},
    'training': {'geometry', 'model', 'estimation', 'inference', 'data', 'progress',
                 'parameter_fields'},
    'evaluation': {'geometry', 'estimation', 'data', 'progress'},
    'ros': {'geometry', 'estimation', 'pipeline', 'calibration', 'parameter_fields', 'msg'},
    'cli': {'geometry', 'model', 'estimation', 'features', 'inference', 'refinement', 'data',
            'training', 'evaluation', 'progress'},
    'demos': {'geometry', 'model', 'estimation', 'pipeline', 'simulation', 'evaluation', 'ros',
              'msg'},
}
TOP = {'ros', 'cli', 'demos', 'evaluation'}
"""Consumers: nothing in the core imports them, and the node imports none of the others."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in SOURCE.rglob('*.py')}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (absolute and relative imports)."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                child = f'{base}.{alias.name}'
                targets.append(child if child in known else base)
        found.update(t for t in targets if t == PACKAGE or t.startswith(PACKAGE + '.'))
    return found - {name}


def part(module: str) -> str:
    return module.split('.')[1] if '.' in module else ''


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported_modules(name, path, known) for name, path in found.items()}


def test_every_part_of_the_package_has_a_layer():
    parts = {part(name) for name in modules()} - {''}
    assert parts <= set(ALLOWED), f'no layer for {sorted(parts - set(ALLOWED))}'


def test_imports_point_down_the_layers():
    wrong = []
    for name, targets in import_graph().items():
        source = part(name)
        for target in targets:
            destination = part(target)
            if destination and destination != source and destination not in ALLOWED.get(
                    source, set()):
                wrong.append(f'{name} -> {target}')
    assert not wrong, 'imports against the layers:\n' + '\n'.join(sorted(wrong))


def test_the_core_never_imports_the_consumers():
    for source, allowed in ALLOWED.items():
        if source not in TOP:
            assert not allowed & TOP, source
    assert not ALLOWED['ros'] & (TOP - {'ros'})


def test_no_import_cycles_between_modules():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(' -> '.join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, 'import cycles:\n' + '\n'.join(cycles)


def test_the_analysis_sees_lazy_and_relative_imports(tmp_path):
    """A function-level import and a relative import are both found (the test can fail)."""
    module = tmp_path / 'probe.py'
    module.write_text('from . import sibling\n\ndef f():\n    from raydiff_ros.ros import x\n')
    known = {'raydiff_ros.pipeline.sibling', 'raydiff_ros.ros.x'}
    assert imported_modules('raydiff_ros.pipeline.probe', module, known) == known


def test_no_two_public_classes_share_a_name():
    defined: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith('_'):
                defined.setdefault(node.name, []).append(name)
    shared = {cls: where for cls, where in defined.items() if len(where) > 1}
    assert not shared, shared
