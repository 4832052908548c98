"""Drive the function with a load profile and record what it and Knative did, second by second.

``python -m loadtest --help`` describes the command line. The package is split so that only
``workload`` and ``runner`` import Locust (which patches the standard library for gevent on
import); everything else is plain Python that tests and other tools can import safely.
"""
