"""Find people by what they wear: an attribute index over alm-predict's people
folders (Parquet, one file per video) and a ranked search over it (DuckDB).

  from alm_tf import search
  search.index_folders(["out/cam1", "out/cam2"], "idx")
  frame = search.Index("idx").search("female long_hair -hat", top=10)
  search.write_results(frame, "results.html")
"""

from alm_tf.search.index import index_folders, read_people_folder
from alm_tf.search.layout import OUTPUT_FORMATS, RESULT_COLUMNS, SearchError
from alm_tf.search.query import parse_query
from alm_tf.search.ranking import DEFAULT_TOP, Index, parse_time
from alm_tf.search.results import output_format, write_results

__all__ = ["DEFAULT_TOP", "Index", "OUTPUT_FORMATS", "RESULT_COLUMNS", "SearchError", "index_folders",
           "output_format", "parse_query", "parse_time", "read_people_folder", "write_results"]
