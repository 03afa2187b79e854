"""Where the benchmarks write their markdown tables: ``bench/results/`` (ignored by git)."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / 'results'


def write_table(name: str, lines: list[str], header: str) -> Path:
    """Write ``lines`` to ``bench/results/<name>``, print ``header`` (the machine and
    conditions) and the path; returns the path."""
    output = RESULTS / name
    output.parent.mkdir(exist_ok=True)
    output.write_text('\n'.join(lines) + '\n')
    print(header)
    print(f'written: {output}')
    return output
