"""The source file functions-framework loads (``--source function/main.py``).

Deployed, ASGI mode:  functions-framework --asgi --source function/main.py --target handle
Flask (WSGI) mode:    functions-framework --source function/main.py --target handle_flask
"""

import sys

from function import logs, resp, serving
from function.asgi import handle
from function.settings import ConfigError, loaded
from function.wsgi import handle_flask

try:
    settings = loaded()  # read once, here: a bad value stops the server before it listens
except ConfigError as error:
    # One line naming the variable, not a traceback from deep inside the framework.
    sys.exit(f"configuration error: {error}")

logs.configure(settings.log_format)
resp.warn_if_slow()  # here, before gunicorn forks its workers: once per server
try:
    serving.install()
except serving.FrameworkMismatch as error:
    sys.exit(f"functions-framework mismatch: {error}")

__all__ = ["handle", "handle_flask"]
