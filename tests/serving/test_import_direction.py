"""Imports of artifacts/, serving/ and inference/ point down the library.

artifacts/ (files, the one loader, portable runtimes) sits under serving/
(the exporters and clients); inference/ (images, writers, pictures) sits
under people/ (frames and footage), which builds on its writers.
"""

import ast
import os

import pytest

import alm_tf

LIBRARY = os.path.dirname(os.path.abspath(alm_tf.__file__))
#: package -> the packages its modules must not import.
FORBIDDEN = {
    "artifacts": ("alm_tf.serving", "alm_tf.inference", "alm_tf.people", "alm_tf.demo"),
    "serving": ("alm_tf.inference", "alm_tf.people", "alm_tf.demo"),
    "inference": ("alm_tf.people", "alm_tf.demo"),
}


def _imported_modules(path: str) -> set:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_down(package):
    folder = os.path.join(LIBRARY, package)
    wrong = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            for module in _imported_modules(os.path.join(folder, name)):
                if module.startswith(FORBIDDEN[package]):
                    wrong.append(f"{package}/{name} imports {module}")
    assert not wrong, wrong
