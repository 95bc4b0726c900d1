"""``stylize-batch``: many videos and long videos across workers, GPUs and machines (Ray).

Each input is cut at keyframes into segments (``segments``), each segment is decoded, processed and encoded
by a worker that keeps its model loaded (``worker``; run by ``local`` processes or ``ray_executor`` actors),
and the segments are joined without re-encoding into the output (``join``). A manifest in the work folder
(``manifest``) lets a re-run do only what is missing; ``driver`` ties these together and ``summary`` reports.
"""
