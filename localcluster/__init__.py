"""A one-node Knative cluster built from Go modules, for machines that cannot pull images.

Every program is built here from its published Go module (gomod/), every image is made here
(FROM scratch, a single binary) and loaded into containerd, and every cluster address lives in a
network namespace of its own whose default route is a blackhole.
"""
