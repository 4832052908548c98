"""python -m localcluster COMMAND: a one-node Knative cluster built from Go modules."""

from __future__ import annotations

import argparse
import sys

from localcluster import build, cluster, node
from localcluster.progress import ClusterError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster", description=__doc__)
    parser.add_argument(
        "command", choices=["build", "built", "up", "down", "status", "load", "env"]
    )
    parser.add_argument("image", nargs="?", help="load: an image in podman's storage")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build.build_all()
        elif args.command == "built":  # exit status only, and one line when it is not
            todo = [p.name for p in build.missing()] + build.missing_images()
            if todo:
                print(
                    f"the local cluster is not built ({', '.join(todo)} missing): "
                    "`make localcluster-up` builds it"
                )
                return 1
        elif args.command == "up":
            cluster.up()
        elif args.command == "down":
            cluster.down()
        elif args.command == "env":  # for scripts: eval "$(python -m localcluster env)"
            if not cluster.running():
                raise ClusterError("the local cluster is not running: `make localcluster-up`")
            print(cluster.shell_env())
        elif args.command == "load":
            if not args.image:
                parser.error("load needs an image name, e.g. dev.local/kv-store:local")
            if not cluster.running():
                raise ClusterError("the local cluster is not running: `make localcluster-up`")
            node.load_image(args.image)
        else:
            return cluster.status()
    except ClusterError as error:
        print(f"localcluster {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
