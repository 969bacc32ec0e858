"""How the two lanes share one machine's CPU (docs/lanes.md).

On a GPU both lanes' work runs on the GPU and the CPU only feeds it. On a CPU-only host a training takes
every core it is given, and a sample drawn meanwhile would wait for its turn: the long lane's processes are
niced (`long_lane_nice`), so the scheduler runs the interactive lane first whenever it has work, and each
lane's torch thread count can be capped.
"""

from __future__ import annotations

import logging
import os

import torch

from core.settings import Settings
from core.vocabulary import Lane

log = logging.getLogger(__name__)


def share_the_cpu(settings: Settings, lane: Lane) -> None:
    """Call in the process (or, for threads, before the first torch op) that runs the lane's jobs."""
    if lane == "long" and settings.long_lane_nice:
        try:
            os.nice(settings.long_lane_nice)
        except OSError:  # not permitted here: the lanes share the CPU evenly
            log.warning("could not lower the long lane's CPU priority", exc_info=True)
    threads = settings.long_lane_torch_threads if lane == "long" else settings.interactive_torch_threads
    if threads:
        torch.set_num_threads(threads)
