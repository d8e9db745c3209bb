"""What more than one benchmark uses: a git revision's ALM layer to time against this tree's.

Benchmarks run as modules of this package from the repository root
(`python -m benchmarks.bench_heads`), so they import `alm_tf` from this
checkout and each other as `benchmarks.<name>` without editing sys.path.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LAYER_FILES = ("alm_tf/ops.py", "alm_tf/layers/attribute_localization.py")


def _load(name: str, path: str):
    """The module at `path`, imported as `name` (registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def reference_layer(ref: str, workdir: str):
    """The AttributeLocalization class (and its ops module) of git revision `ref`.

    The revision's two files are written to `workdir` and imported under their
    own names (`reference_alm_ops`, `reference_alm_layer`), the layer
    registered in its own Keras package, so both versions live in one process.
    """
    sources = {}
    for path in _LAYER_FILES:
        sources[path] = subprocess.run(["git", "-C", ROOT, "show", f"{ref}:{path}"], check=True,
                                       capture_output=True, text=True).stdout
    ops_path = os.path.join(workdir, "reference_alm_ops.py")
    with open(ops_path, "w") as f:
        f.write(sources["alm_tf/ops.py"])
    layer_src = sources["alm_tf/layers/attribute_localization.py"]
    layer_src = layer_src.replace("from alm_tf import ops as alm_ops", "import reference_alm_ops as alm_ops")
    layer_src = layer_src.replace('package="alm_tf"', 'package="alm_tf_reference"')
    layer_path = os.path.join(workdir, "reference_alm_layer.py")
    with open(layer_path, "w") as f:
        f.write(layer_src)
    _load("reference_alm_ops", ops_path)
    return _load("reference_alm_layer", layer_path).AttributeLocalization
