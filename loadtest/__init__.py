"""Drive the function with a load profile and record what it and Knative did, second by second.

``python -m loadtest --help`` describes the command line. ``engine`` and ``httpclient`` are the
generator (asyncio on uvloop); ``watcher`` and ``knative`` read the cluster; ``timeline``,
``analysis``, ``report``, ``histograms`` and ``plot`` turn a run into its outputs.
"""
