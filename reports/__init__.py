"""Result tables to files and terminals (never imports sim or mapper)."""
from .io import (check_dir_target, check_file_target, check_folder, open_folder, seal_folder,
                 write_csv, write_json, write_text)
from .tables import format_table, markdown_table

__all__ = ["check_dir_target", "check_file_target", "check_folder", "format_table",
           "markdown_table", "open_folder", "seal_folder", "write_csv", "write_json",
           "write_text"]
from .pareto import pareto, pareto_mask  # noqa: E402

__all__ += ["pareto", "pareto_mask"]
