"""Sharing work items among MPI ranks; knows no physics and no file.

`queue` (the MPI work queue, `WorkQueue`), `dealing` (the policy without MPI: `Dealer`,
`plan_groups`), `collector` (partial results gathered per family, `Collector`),
`progress` (the progress log and ETA), `settings` (`QueueSettings`, the tuning knobs)
and `transport` (tags, a polling receive).
"""
from .collector import Collector
from .dealing import Dealer, group_efficiency, plan_groups
from .queue import WorkQueue
from .settings import QueueSettings
from .transport import poll_recv

__all__ = ["Collector", "Dealer", "QueueSettings", "WorkQueue", "group_efficiency", "plan_groups",
           "poll_recv"]
