"""Run records, aggregation over seeds, comparisons and result files."""
from pyg_ham.results.io import provenance, read_json, write_json

__all__ = ["provenance", "read_json", "write_json"]
