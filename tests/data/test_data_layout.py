"""The data and preprocessing packages stay walkable: short functions and
modules, each file name defined once."""

from __future__ import annotations

import ast
import pathlib

import alm_tf
from alm_tf.data import manifest

_ROOT = pathlib.Path(alm_tf.__file__).parent
_PACKAGES = ("data", "preprocessing")
_MAX_FUNCTION_LINES = 80
_MAX_MODULE_LINES = 500


def _modules(*packages):
    return sorted(path for package in packages for path in (_ROOT / package).rglob("*.py"))


def test_functions_and_modules_are_short():
    long = []
    for path in _modules(*_PACKAGES):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > _MAX_MODULE_LINES:
            long.append(f"{path.relative_to(_ROOT)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > _MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(_ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, long


def test_the_manifest_name_is_typed_once():
    """Every module takes `manifest.json` from `alm_tf.data.manifest.MANIFEST`."""
    typed = [str(path.relative_to(_ROOT)) for path in _modules(".")
             if any(isinstance(node, ast.Constant) and node.value == manifest.MANIFEST
                    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))]
    assert typed == ["data/manifest.py"], typed
