"""A bare Litestar hello-world: the baseline ``bench_api`` measures beside the shop's API.

One route, no database, no middleware, no templates: what Litestar and uvicorn cost by themselves
on this machine. ``bench_api`` serves it with the same uvicorn settings as ``webshop serve``.
"""

from litestar import Litestar, get


@get("/", sync_to_thread=False)
def hello() -> dict[str, str]:
    """Answer a tiny JSON object."""
    return {"hello": "world"}


app = Litestar(route_handlers=[hello], openapi_config=None)
