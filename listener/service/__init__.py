"""The always-on service: ``listener run`` (scheduler) and ``listener worker`` (scale-out).

* :mod:`listener.service.state`: what outlives one crawl (checkpoints, seen ids,
  run records, the schedule), in files under ``LISTENER_HOME`` or in Redis.
* :mod:`listener.service.scheduler`: which source entry is due, and running it.
* :mod:`listener.service.jobs`: the Redis stream of due work, with leases.
* :mod:`listener.service.worker`: a worker taking jobs from that stream.
* :mod:`listener.service.child`: one crawl of one entry in its own process.
"""
