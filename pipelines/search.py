"""alm-search: the people of an index ranked by how well they match a query.

  alm-search --index=idx --query='female long_hair backpack -hat' --top=10 --output=results.html
  alm-search --index=idx --query='gender=female upper_color=red|black' --camera=cam1 \\
      --from=0:30 --to=2:00 --strict --output=results.csv

Query terms: an attribute (`backpack`), an absent one (`-hat`), a group's
readable value (`gender=female`, or `female` alone when unambiguous), several
values of one group (`upper_color=red|black`: any of them). Tracks are ranked
by the joint log-probability of the terms under the model (an absent term
counts 1 - p), ties by track length; --strict keeps only tracks whose
thresholded answers satisfy every term. --from/--to: seconds or [H:]MM:SS
from the video's start; a track seen at any moment in between is kept.
--output: .html (one self-contained page), .csv or .json; without it the
results are printed.
"""

from __future__ import annotations

from absl import flags

from alm_tf import search
from pipelines import _cli
from pipelines._cli import OVERRIDE as _OVERRIDE

_INDEX = flags.DEFINE_string("index", None, "The index folder (alm-index).", **_OVERRIDE)
_QUERY = flags.DEFINE_string("query", None, "The query, e.g. 'female long_hair -hat'.", **_OVERRIDE)
_TOP = flags.DEFINE_integer("top", search.DEFAULT_TOP, "How many tracks to return.", lower_bound=1,
                            **_OVERRIDE)
_CAMERA = flags.DEFINE_string("camera", None, "Only this camera's tracks.", **_OVERRIDE)
_FROM = flags.DEFINE_string("from", None, "Only tracks seen at or after this time (seconds or [H:]MM:SS).",
                            **_OVERRIDE)
_TO = flags.DEFINE_string("to", None, "Only tracks seen at or before this time (seconds or [H:]MM:SS).",
                          **_OVERRIDE)
_STRICT = flags.DEFINE_bool("strict", False, "Keep only tracks whose thresholded answers satisfy every "
                            "term.", **_OVERRIDE)
_OUTPUT = flags.DEFINE_string("output", None, "Results file: .html, .csv or .json (default: print).",
                              **_OVERRIDE)


def _filters() -> str:
    parts = [f"camera {_CAMERA.value}" if _CAMERA.value else "",
             f"from {_FROM.value}" if _FROM.value else "", f"to {_TO.value}" if _TO.value else "",
             "strict" if _STRICT.value else ""]
    return ", ".join(p for p in parts if p)


def main(argv: list[str]) -> None:
    """Searches; exits 1 with one line on stderr on bad flags or input."""
    for name, flag in (("index", _INDEX), ("query", _QUERY)):
        if not flag.value:
            _cli.fail("alm-search", f"--{name} is required")
    try:
        if _OUTPUT.value:
            search.output_format(_OUTPUT.value)
        index = search.Index(_INDEX.value)
        terms = search.parse_query(_QUERY.value, index.groups)
        frame = index.search(_QUERY.value, top=_TOP.value, camera=_CAMERA.value, start=_FROM.value,
                             end=_TO.value, strict=_STRICT.value)
        if _OUTPUT.value:
            keys = tuple(k for t in terms for k in t.keys)
            search.write_results(frame, _OUTPUT.value, keys, _filters())
    except (ValueError, OSError) as e:  # SearchError is a ValueError.
        _cli.fail("alm-search", _cli.first_line(e))
        return
    if _OUTPUT.value:
        print(f"{len(frame)} results: {_OUTPUT.value}")
    else:
        print(frame.to_string(index=False) if len(frame) else "no track matches")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-search", main)


if __name__ == "__main__":
    run()
