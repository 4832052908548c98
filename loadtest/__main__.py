"""``python -m loadtest``: see ``--help``."""

import sys

# `predict` models Knative's autoscaler offline: plain Python, no Locust, no gevent patching.
if sys.argv[1:2] == ["predict"]:
    from loadtest.kpa.predict import main as predict_main

    sys.exit(predict_main(sys.argv[2:]))

# Locust runs on gevent: the standard library (socket, ssl, threading) must be patched before
# anything else imports it, so that the Kubernetes client's calls yield to the load instead of
# blocking it. Hence this comes first.
from gevent import monkey

monkey.patch_all()

from loadtest.cli import main  # noqa: E402

sys.exit(main())
