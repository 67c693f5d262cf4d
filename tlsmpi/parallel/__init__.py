"""Sharing work items among MPI ranks (`schedule`): dealing policy, queue, part
collector and progress.  Knows no physics and no file."""
