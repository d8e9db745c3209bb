"""alm-index: adds alm-predict people folders to a search index.

  alm-index --inputs=out/cam1,out/cam2 --index=idx

Each input is a people folder of alm-predict (a detector run or a --tracks
file) with run.json (camera, source, the model's attributes, thresholds and
groups), tracks.csv and thumbnails/. The index (created when missing or
empty) holds one Parquet file per video (`alm_tf.search.layout`) and copies
of the thumbnails, so it can be moved whole. Indexing a video again replaces
its rows; a folder answered by a model with other attributes than the
index's is refused. Every input is checked before anything is written.
Search it with alm-search.
"""

from __future__ import annotations

from absl import flags

from alm_tf.search import index as index_lib
from pipelines import _cli
from pipelines._cli import OVERRIDE as _OVERRIDE

_INPUTS = flags.DEFINE_list("inputs", [], "alm-predict people folders to index, comma-separated.", **_OVERRIDE)
_INDEX = flags.DEFINE_string("index", None, "The index folder (created when missing or empty).", **_OVERRIDE)


def main(argv: list[str]) -> None:
    """Indexes; exits 1 with one line on stderr on bad flags or input."""
    if not _INPUTS.value:
        _cli.fail("alm-index", "--inputs is required (people folders of alm-predict)")
    if not _INDEX.value:
        _cli.fail("alm-index", "--index is required")
    try:
        runs = index_lib.index_folders(list(_INPUTS.value), _INDEX.value)
    except (ValueError, OSError) as e:  # SearchError is a ValueError.
        _cli.fail("alm-index", _cli.first_line(e))
        return
    for run in runs:
        print(f"{run.folder}: {run.table.num_rows} tracks of camera {run.camera!r} -> {run.key}")
    print(f"indexed {sum(r.table.num_rows for r in runs)} tracks into {_INDEX.value}")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-index", main)


if __name__ == "__main__":
    run()
