"""``python -m loadtest``: see ``--help``."""

import sys

# `predict` models Knative's autoscaler offline; it has its own arguments.
if sys.argv[1:2] == ["predict"]:
    from loadtest.kpa.predict import main as predict_main

    sys.exit(predict_main(sys.argv[2:]))

# `coldstart` takes a Knative Service from zero pods and times each phase.
if sys.argv[1:2] == ["coldstart"]:
    from loadtest.coldstart import main as coldstart_main

    sys.exit(coldstart_main(sys.argv[2:]))

from loadtest.cli import main

sys.exit(main())
