"""Result tables to files and terminals (never imports sim or mapper)."""
from .io import write_csv, write_json, write_text
from .tables import format_table, markdown_table

__all__ = ["format_table", "markdown_table", "write_csv", "write_json", "write_text"]
from .pareto import pareto, pareto_mask  # noqa: E402

__all__ += ["pareto", "pareto_mask"]
