"""Knative's Pod Autoscaler (KPA) as a model: what it would decide for a measured load.

Each module follows a part of knative/serving (knative-v1.23.0) and names the file it follows:
``windows`` the metric buckets and the scale-down-delay window, ``decider`` one decision tick,
``settings`` config-autoscaler and the Service's annotations, ``reconciler`` the
PodAutoscaler's scale() (bounds, scale to zero), ``simulation`` the seconds, the PA's state, the
activator's place and the pods; ``load``, ``report``, ``plot`` and ``predict`` make the
``python -m loadtest predict`` command. Plain Python: nothing here imports Locust or gevent.
"""
