"""Which dataset command's results a folder holds. `batch` and `evaluate` both write OUTPUT/summary.csv (one a
table per video, the other per strategy and round): neither writes into a folder holding the other's results,
which it would mix with its own and whose summary it would replace without a word."""

from __future__ import annotations

from pathlib import Path

from xmempp.errors import XMemPPError, file_system_problems_as_error, shown
from xmempp.regular_files import open_regular

SUMMARY_FILE = "summary.csv"  # both commands' (batch.SUMMARY_FILE, evaluate.SUMMARY_FILE)
EVALUATION_FILE = "per_frame.csv"  # evaluate's alone (evaluate.PER_FRAME_FILE)
# How each command's summary.csv begins: its first columns (batch.SUMMARY_COLUMNS, evaluate's `summarise`).
SUMMARY_STARTS = {"batch": "video,status,", "evaluate": "strategy,round,"}
WHAT_EACH_WRITES = {
    "batch": "summary.csv and a folder per video",
    "evaluate": "per_frame.csv, summary.csv, j_and_f.png and a folder per strategy",
}


def refuse_other_commands_results(output: Path, command: str) -> None:
    """Refuse, naming the folder and what it holds, to let `command` ("batch" or "evaluate") write into `output`
    when it holds the other command's results."""
    other = "evaluate" if command == "batch" else "batch"
    if _holds_results_of(output, other):
        raise XMemPPError(f"{shown(output)} holds the results of `xmempp {other}` ({WHAT_EACH_WRITES[other]}): "
                          f"{command} would mix its own with them and replace their {SUMMARY_FILE}; choose another "
                          "output folder, or move them away first")


def _holds_results_of(output: Path, command: str) -> bool:
    if command == "evaluate" and (output / EVALUATION_FILE).is_file():
        return True
    summary = output / SUMMARY_FILE
    if not summary.is_file():
        return False
    with file_system_problems_as_error(f"read {shown(summary)}"), open_regular(summary) as file:
        start = file.read(64).decode("utf-8", errors="replace")
    return start.startswith(SUMMARY_STARTS[command])
