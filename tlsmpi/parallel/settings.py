"""The tuning knobs of the work queue in one frozen object (`QueueSettings`)."""
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueSettings:
    """How `tlsmpi.parallel.WorkQueue` deals and reports (docs/performance.md); the
    defaults suit items of milliseconds to hours.

    Attributes
    ----------
    progress_seconds : float
        Interval of the progress log on rank 0 (INFO, logger "tlsmpi"); default 10
        (the runner passes ``output.progress_seconds``).
    chunk_factor : float
        Guided chunking: a chunk is worth about remaining cost / (chunk_factor x ranks);
        default 2.
    min_chunk_seconds, max_chunk_seconds : float
        Smallest and largest chunk in measured wall seconds (converted with the
        measured ratio of wall time to predicted cost, once items have completed); a
        chunk has at least one item.  Defaults 0.05 and 60 (rank 0 hears of progress at
        least every minute).
    serve_in_thread : bool
        True (default): rank 0 serves from a thread and computes too.  False: rank 0
        only serves (its `WorkQueue.take` serves until the job ends, then returns []);
        chosen automatically when MPI does not provide ``MPI_THREAD_MULTIPLE``.
    """
    progress_seconds: float = 10.0
    chunk_factor: float = 2.0
    min_chunk_seconds: float = 0.05
    max_chunk_seconds: float = 60.0
    serve_in_thread: bool = True
