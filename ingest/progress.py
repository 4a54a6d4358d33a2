"""A terminal progress bar for ingest jobs: documents done of total, chunks written, rate and ETA."""

from __future__ import annotations

import sys
from typing import TextIO


class TerminalProgress:
    """A ``ProgressFn`` drawing one tqdm bar on a TTY (callers decide whether stderr is one)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=None, unit="doc", desc="ingest", file=stream or sys.stderr, dynamic_ncols=True,
                         smoothing=0.1)
        self._chunks = 0

    def __call__(self, event: str, amount: int) -> None:
        if event == "total":
            self._bar.total = (self._bar.total or 0) + amount
            self._bar.refresh()
        elif event == "document":
            self._bar.update(amount)
        elif event == "chunks":
            self._chunks += amount
            rate = self._bar.format_dict.get("rate") or 0
            elapsed = self._bar.format_dict.get("elapsed") or 0
            self._bar.set_postfix(chunks=self._chunks, chunks_per_s=round(self._chunks / elapsed, 1) if elapsed else 0,
                                  docs_per_s=round(rate, 1), refresh=False)

    def close(self) -> None:
        """Finish the bar (leaves the final line on screen)."""
        self._bar.close()
