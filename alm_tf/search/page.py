"""The results page: one self-contained HTML file, no script, no server.

The query (each term as typed), then a grid of the results in rank order:
each card has the track's thumbnail inline (a data URI, so the page can be
mailed or moved alone), its camera, track id, times and score, the query's
terms marked as held or not by the thresholded answers, and the readable
answers with the keys the query reads highlighted: an ungrouped
attribute's 0/1 label reads `yes` / `no`, several values of a group read
as a list (`skirt, shorts`), and a group with no value
present (no accessory, nothing carried) reads `none`, so that no answer
looks missing. A track without a thumbnail gets a grey placeholder image,
so the page has exactly one `<img>` per result.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping
from typing import Optional

import pandas as pd

from alm_tf.groups import MULTI_SEPARATOR
from alm_tf.search import layout

#: Shown where a track has no thumbnail: a grey 64x128 picture.
PLACEHOLDER = ("data:image/svg+xml;base64," + base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="128">'
    b'<rect width="64" height="128" fill="#bbb"/></svg>').decode("ascii"))
_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
_STYLE = """
body{font-family:sans-serif;margin:16px;background:#fafafa;color:#222}
h1{font-size:20px;margin:0 0 4px}
.query span{display:inline-block;margin:2px 4px 2px 0;padding:2px 8px;border-radius:10px;background:#dde}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:12px;margin-top:12px}
.card{background:#fff;border:1px solid #ccc;border-radius:6px;padding:8px;font-size:12px}
.card img{display:block;width:96px;height:192px;object-fit:contain;background:#eee;margin:0 auto 6px}
.held{color:#060;font-weight:bold}.missed{color:#a00;text-decoration:line-through}
mark{background:#ffe680}.none{color:#888}
dl{margin:4px 0 0}dt{font-weight:bold;display:inline}dd{display:inline;margin:0 0 0 4px}
""".strip()

#: How to read a card (under the query).
_LEGEND = ("Score: the log-probability of the whole query under the model (0: certain). A term struck "
           "through is one the thresholded answers do not hold.")

__all__ = ["render"]


def _image(path: str) -> str:
    mime = _MIME.get(os.path.splitext(path)[1].lower())
    if not path or mime is None or not os.path.isfile(path):
        return PLACEHOLDER
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode("ascii")


def _seconds(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    value = float(value)
    minutes, seconds = divmod(value, 60.0)
    return f"{int(minutes)}:{seconds:05.2f}"


def _value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def _answer(value, is_label: bool) -> str:
    """An answer cell as the page shows it (module docstring)."""
    text = _value(value)
    if is_label and text in ("0", "1"):
        return ("no", "yes")[int(text)]
    return html.escape(text.replace(MULTI_SEPARATOR, ", ")) if text else '<span class="none">none</span>'


def _card(row: Mapping, matches, terms, term_keys, answer_columns, label_columns=()) -> str:
    chips = " ".join(f'<span class="{"held" if ok else "missed"}">{html.escape(t)}</span>'
                     for t, ok in zip(terms, matches))
    answers = []
    for key in answer_columns:
        text = _answer(row[key], key in label_columns)
        if key in term_keys:
            text = f"<mark>{text}</mark>"
        answers.append(f"<dt>{html.escape(key)}</dt><dd>{text}</dd><br>")
    return (f'<div class="card" id="r{int(row["rank"])}"><img alt="track {html.escape(str(row["track_id"]))}" '
            f'src="{_image(row["thumbnail"])}">'
            f'<div><b>#{int(row["rank"])}</b> {html.escape(str(row["camera"]))} · track '
            f'{html.escape(str(row["track_id"]))}</div>'
            f'<div>{_seconds(row["start_time"])} – {_seconds(row["end_time"])} · score '
            f'{float(row["score"]):.3f}</div>'
            f'<div>{chips}</div><dl>{"".join(answers)}</dl></div>')


def render(frame: pd.DataFrame, term_keys: tuple[str, ...] = (), filters: Optional[str] = None) -> str:
    """The page for a search's DataFrame (`Index.search`); `term_keys`: answer keys to mark."""
    terms = list(frame.attrs.get("terms", []))
    matches = frame.attrs.get("matches") or [()] * len(frame)
    answer_columns = [c for c in frame.columns if c not in layout.RESULT_COLUMNS]
    query = html.escape(str(frame.attrs.get("query", "")))
    labels = set(frame.attrs.get("label_columns", ()))
    cards = [_card(row, m, terms, set(term_keys), answer_columns, labels)
             for row, m in zip(frame.to_dict("records"), matches)]
    chips = "".join(f"<span>{html.escape(t)}</span>" for t in terms)
    subtitle = f"<p>{html.escape(filters)}</p>" if filters else ""
    body = "\n".join(cards) if cards else "<p>No track matches.</p>"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Search: {query}</title>'
            f"<style>{_STYLE}</style></head><body>\n<h1>Search: {query}</h1>"
            f'<div class="query">{chips}</div>{subtitle}<p>{len(cards)} result(s), best first. {_LEGEND}</p>\n'
            f'<div class="grid">\n{body}\n</div>\n</body></html>\n')
