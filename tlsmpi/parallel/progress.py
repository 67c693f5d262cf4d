"""Progress of the job on rank 0: items done, percent of the predicted work, the ETA of
`tlsmpi.parallel.dealing.Dealer` and the rate it implies, logged at intervals."""
import logging

log = logging.getLogger("tlsmpi")


class Progress:
    """The progress log of one job (rank 0, INFO, logger "tlsmpi").

    Parameters
    ----------
    n_items, cost : int, float
        Items of this job and their predicted cost.
    done_items, done_cost : int, float
        Items and predicted cost completed by earlier jobs (``--resume``).
    label : str
        Name of the items in the log.
    seconds : float
        Interval of the log.
    now : float
        Start time (monotonic clock).
    """

    def __init__(self, n_items, cost, *, done_items=0, done_cost=0.0, label="realizations",
                 seconds=10.0, now=0.0):
        self.done_items, self.done_cost = done_items, done_cost
        self.total_items = done_items + n_items
        self.total_cost = done_cost + cost
        self.label, self.seconds, self.last = label, seconds, now

    def log(self, dealer, now, force=False):
        """Log the state of ``dealer`` if ``seconds`` have passed since the last line."""
        if not force and now - self.last < self.seconds:
            return
        self.last = now
        log.info(self.line(dealer, now))

    def line(self, dealer, now):
        """'i/n LABEL done, P% of the predicted work, PACE': the percent by predicted cost,
        PACE from ONE estimate, the dealer's ETA (`Dealer.eta`), and the rate it implies,
        (100 - P) % over the ETA, so that the rate times the ETA is the work left."""
        done_cost = self.done_cost + dealer.predicted_done
        percent = 100 * done_cost / self.total_cost if self.total_cost > 0 else 100.0
        eta = dealer.eta(now)
        if eta is None:
            pace = "ETA unknown (no item measured yet)"
        elif eta <= 0 or percent >= 100:
            pace = f"ETA {_clock(0)}"
        else:
            pace = f"{(100 - percent) * 60 / eta:.3g}%/min expected, ETA {_clock(eta)}"
        return (f"{self.done_items + dealer.done}/{self.total_items} {self.label} done, "
                f"{percent:.1f}% of the predicted work, {pace}")


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
