"""The source file functions-framework loads: ``--source function/main.py``.

  functions-framework --asgi --source function/main.py --target handle        (deployed)
  functions-framework --source function/main.py --target handle_flask         (Flask mode)
"""

from function.asgi import handle
from function.wsgi import handle_flask

__all__ = ["handle", "handle_flask"]
