"""Background jobs run in-process on a small thread pool, submitted only after their transaction
commits (a job never sees data its request rolled back)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("carebridge.jobs")


class JobRunner:
    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="carebridge-job")

    def submit(self, name: str, work: Callable[[], None]) -> Future[None]:
        def run() -> None:
            try:
                work()
            except (
                Exception
            ) as exc:  # a job's own error handling records details; log the type only
                log.error("job %s failed: %s", name, type(exc).__name__)
                raise

        return self._pool.submit(run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
