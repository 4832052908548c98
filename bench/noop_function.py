"""The framework ceiling: an async functions-framework HTTP function that does no work.

Served with `functions-framework --asgi --source bench/noop_function.py --target noop`, so its
figures are what gunicorn + uvicorn + Starlette + functions-framework cost on their own.
"""

import functions_framework.aio
from starlette.requests import Request


@functions_framework.aio.http
async def noop(request: Request) -> str:
    return "ok"
