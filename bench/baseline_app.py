"""The 2017 article's Flask + Redis app, kept as written so the benchmark has its starting point.

Changed only where it cannot run otherwise on Python 3 and today's redis-py, or could not reach the
benchmark's Redis; every change is marked CHANGED. Its flaws (separate DEL/HMSET/EXPIRE and
EXISTS/HGETALL/TTL round trips, a 200 text body for a missing key, flat string values only) are
what the benchmark compares against, so they stay.
"""

# mypy: ignore-errors
# (untyped on purpose: this is the article's code, not ours)

import os
import time

import flask  # CHANGED: the article calls flask.jsonify without importing flask
from flask import Flask, request
from redis import Redis

app = Flask(__name__)
# CHANGED: was Redis(host='redis', port=6379); the benchmark passes its own Redis in REDIS_URL.
db = Redis.from_url(os.environ.get("REDIS_URL", "redis://redis:6379"))
ttl = 31104000  # one year, as the article defines it (360 days)


@app.route("/")
def hello():
    db.incr("count")
    return "Count is %s." % db.get("count")  # noqa: UP031  (as written)


@app.route("/<path:path>", methods=["PUT", "GET"])
def home(path):
    if request.method == "PUT":
        event = request.json
        event["last_updated"] = int(time.time())
        event["ttl"] = ttl
        db.delete(path)
        db.hmset(path, event)
        db.expire(path, ttl)
        return flask.jsonify(event), 201
    else:
        if not db.exists(path):
            return "Error: thing doesn't exist"
        # CHANGED: Python 3 redis-py returns bytes, which jsonify cannot encode; decode them.
        event = {key.decode(): value.decode() for key, value in db.hgetall(path).items()}
        event["ttl"] = db.ttl(path)
        return flask.jsonify(event), 200


if __name__ == "__main__":
    # CHANGED: was app.run(host="0.0.0.0", debug=True). The debugger's reloader needs a console
    # and is never a production setting; the development server itself (threaded) stays.
    # Bound to loopback and given a port because the benchmark runs several servers.
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
