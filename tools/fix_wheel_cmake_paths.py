"""Point the ROS 2 wheels' exported CMake targets at this machine's Python and numpy headers.

The PyPI ROS 2 wheels were built in a manylinux container; their exported
``*__rosidl_generator_pyExport.cmake`` files keep that container's include folders, so building
an interface package against them fails until the folders are replaced by this interpreter's.

Usage: python tools/fix_wheel_cmake_paths.py VENV_PREFIX (run with the venv's python).
"""

from pathlib import Path
import re
import sys
import sysconfig

import numpy

BUILD_MACHINE_PYTHON_INCLUDE = re.compile(r'/opt/python/cp3\d+-cp3\d+/include/python3\.\d+')
BUILD_MACHINE_NUMPY_INCLUDE = re.compile(
    r'/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include')


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    prefix = Path(argv[0])
    python_include = sysconfig.get_paths()['include']
    numpy_include = numpy.get_include()
    changed = 0
    for path in sorted(prefix.glob('share/*/cmake/*.cmake')):
        text = path.read_text()
        fixed = BUILD_MACHINE_NUMPY_INCLUDE.sub(numpy_include, text)
        fixed = BUILD_MACHINE_PYTHON_INCLUDE.sub(python_include, fixed)
        if fixed != text:
            path.write_text(fixed)
            changed += 1
    print(f'fix_wheel_cmake_paths: {changed} CMake files now use {python_include}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
