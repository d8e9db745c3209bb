"""`Index(path).search(query, ...)`: the ranked tracks of an index, with DuckDB.

DuckDB scans the index's Parquet files in place (embedded, no server): the
query's score (`alm_tf.search.query`) is one SQL expression over the
`<attr>_prob` columns, each term's thresholded truth another; the tracks
are ordered by score, then by length (more frames first), then camera,
track id and start time so that the order is total.
"""

from __future__ import annotations

import math
import os
import re
from typing import Optional, Union

import duckdb
import pandas as pd

from alm_tf import groups as groups_lib
from alm_tf.search import layout, query as query_lib
from alm_tf.search.layout import SearchError, quote

DEFAULT_TOP = 20
TimeSpec = Union[None, float, int, str]
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")

__all__ = ["DEFAULT_TOP", "Index", "parse_time"]


def parse_time(value: TimeSpec, what: str) -> Optional[float]:
    """Seconds from a video's start: a number, or `[H:]MM:SS[.f]` text. None stays None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise SearchError(f"{what} must be seconds or [H:]MM:SS. Received: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        clock = _CLOCK.match(text)
        try:
            seconds = (int(clock.group(1) or 0) * 3600 + int(clock.group(2)) * 60 + float(clock.group(3))
                       if clock else float(text))
        except ValueError:
            raise SearchError(f"{what} must be seconds or [H:]MM:SS. Received: {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise SearchError(f"{what} must be a time >= 0 (seconds or [H:]MM:SS). Received: {value!r}")
    return seconds


class Index:
    """An index folder (`alm_tf.search.layout`), ready to search.

    Raises SearchError when `path` is not an index.
    """

    def __init__(self, path: str):
        self.path = path
        meta = layout.read_index_json(path)
        model = meta["model"]
        try:
            self.groups = groups_lib.from_description(model.get("groups") or {"groups": []},
                                                      model["attributes"], "index model")
        except groups_lib.GroupsError as e:
            raise SearchError(f"{path}: {str(e).splitlines()[0]}") from None
        self.thresholds = tuple(model.get("thresholds") or ())

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.groups.attributes

    @property
    def answer_columns(self) -> tuple[str, ...]:
        """The readable answers of a result: a column per group, then ungrouped attributes' labels."""
        return self.groups.csv_columns + self.groups.ungrouped

    def files(self) -> list[str]:
        return layout.parquet_files(self.path)

    def _source(self) -> str:
        files = self.files()
        if not files:
            raise SearchError(f"index {self.path!r} is empty (no video indexed yet)")
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return f"read_parquet([{listed}])"

    def search(self, query: str, top: int = DEFAULT_TOP, camera: Optional[str] = None,
               start: TimeSpec = None, end: TimeSpec = None, strict: bool = False) -> pd.DataFrame:
        """The `top` tracks for `query`, best first (`alm_tf.search.query` for the grammar).

        Args:
            query: the terms, e.g. `female long_hair -hat upper_color=red|black`.
            top: how many tracks (>= 1).
            camera: only this camera's tracks.
            start, end: only tracks seen between these times (seconds or
                `[H:]MM:SS`): those ending at or after `start` and starting at
                or before `end`.
            strict: only tracks whose thresholded answers satisfy every term.

        Returns:
            A DataFrame: `layout.RESULT_COLUMNS`, then `answer_columns`;
            `attrs` carries `query`, `terms` (as typed), `matches` (per row,
            whether each term's thresholded answer holds) and `label_columns`
            (the answer columns that are an ungrouped attribute's 0/1 label).
        """
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise SearchError(f"top must be an integer >= 1. Received: {top!r}")
        t0, t1 = parse_time(start, "from"), parse_time(end, "to")
        if t0 is not None and t1 is not None and t0 > t1:
            raise SearchError(f"the time range ends before it starts (from {t0:g} s to {t1:g} s)")
        terms = query_lib.parse_query(query, self.groups)
        source = self._source()
        where, params = [], []
        if camera is not None:
            where.append("camera = ?")
            params.append(str(camera))
        if t0 is not None:
            where.append("end_time >= ?")
            params.append(t0)
        if t1 is not None:
            where.append("start_time <= ?")
            params.append(t1)
        if strict:
            where.append(query_lib.strict_sql(terms))
        answers = ", ".join(quote(c) for c in self.answer_columns)
        matches = ", ".join(f"coalesce({t.holds_sql()}, false) AS {quote(f'_term{k}')}"
                            for k, t in enumerate(terms))
        sql = (f"SELECT camera, track_id, start_time, end_time, {query_lib.score_sql(terms)} AS score, "
               f"thumbnail{', ' + answers if answers else ''}, {matches} FROM {source}"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} "
               "ORDER BY score DESC NULLS LAST, num_frames DESC, camera, track_id, start_time "
               f"LIMIT {int(top)}")
        with duckdb.connect() as con:
            frame = con.execute(sql, params).fetch_df()
        return self._results(frame, query, terms)

    def _results(self, frame: pd.DataFrame, query: str, terms) -> pd.DataFrame:
        term_columns = [f"_term{k}" for k in range(len(terms))]
        matches = [tuple(bool(v) for v in row) for row in frame[term_columns].itertuples(index=False)]
        frame = frame.drop(columns=term_columns)
        frame.insert(0, "rank", range(1, len(frame) + 1))
        root = os.path.abspath(self.path)
        frame["thumbnail"] = [os.path.join(root, t) if isinstance(t, str) and t else ""
                              for t in frame["thumbnail"]]
        for name in self.groups.ungrouped:
            frame[name] = frame[name].astype("Int8")
        frame = frame[list(layout.RESULT_COLUMNS) + list(self.answer_columns)]
        frame.attrs.update(query=query, terms=[t.text for t in terms], matches=matches,
                           label_columns=list(self.groups.ungrouped))
        return frame
