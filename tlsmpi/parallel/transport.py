"""Point-to-point traffic of the work queue and the collector: message tags and a
receive that polls instead of spinning (Open MPI's blocking receive takes a whole core,
docs/performance.md, "Scheduling")."""
import time

#: Message tags: a worker's request, rank 0's reply, goodbye, closed, a partial result.
REQUEST, REPLY, BYE, CLOSED, PART = 11, 12, 13, 14, 15
#: Polling pauses (s) of the server thread and of waiting workers: the pause doubles
#: from the first to the second value while no message arrives.
POLL_PAUSE = (5e-5, 1e-3)
#: Seconds a worker probes without sleeping for the reply to its request.
REPLY_SPIN = 3e-4


def poll_recv(comm, source, tag, spin=0.0):
    """A blocking receive that probes without pause for ``spin`` seconds, then sleeps
    between probes instead of spinning (Open MPI's blocking receive spins); returns
    (message, source)."""
    from mpi4py import MPI
    pause = POLL_PAUSE[0]
    status = MPI.Status()
    spin_until = time.perf_counter() + spin
    while not comm.Iprobe(source, tag, status):
        if time.perf_counter() > spin_until:
            time.sleep(pause)
            pause = min(2 * pause, POLL_PAUSE[1])
    return comm.recv(source=status.Get_source(), tag=status.Get_tag()), status.Get_source()
