"""Thin absl binaries behind the console scripts (flags -> config -> library).

Importing this package imports TensorFlow once with its start-up chatter
(oneDNN, CUDA probing, CPU feature notes: C++ log lines that
TF_CPP_MIN_LOG_LEVEL does not silence) held back, so that a user error is
the one line the binaries print. If the import fails, the held-back text is
printed. Set ALM_TF_VERBOSE_STARTUP=1 to see it always.
"""

import os
import sys
import tempfile


def _import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules or os.environ.get("ALM_TF_VERBOSE_STARTUP"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to hide
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe logs here
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_import_tensorflow_quietly()
