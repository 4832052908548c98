"""``python -m loadtest``: see ``--help``."""

# Locust runs on gevent: the standard library (socket, ssl, threading) must be patched before
# anything else imports it, so that the Kubernetes client's calls yield to the load instead of
# blocking it. Hence this comes first.
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from loadtest.cli import main  # noqa: E402

sys.exit(main())
