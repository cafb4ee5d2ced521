"""Run records (their schema: :mod:`pyg_ham.results.schema`), aggregation over seeds, comparisons and result
files."""
from pyg_ham.results import schema
from pyg_ham.results.io import provenance, read_json, write_json
from pyg_ham.results.records import RunResult, format_mean_std, mean_std, result_document, summarize

__all__ = ["schema", "provenance", "read_json", "write_json", "RunResult", "mean_std", "format_mean_std", "summarize",
           "result_document"]
