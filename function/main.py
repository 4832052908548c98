"""The source file functions-framework loads (``--source function/main.py``).

Deployed, ASGI mode:  functions-framework --asgi --source function/main.py --target handle
Flask (WSGI) mode:    functions-framework --source function/main.py --target handle_flask
"""

from function.asgi import handle
from function.wsgi import handle_flask

__all__ = ["handle", "handle_flask"]
