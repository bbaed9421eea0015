"""The ceiling: a minimal Litestar endpoint on Granian that answers a constant.

    granian --interface asgi --factory bench.ceiling:create_app

It is what this stack costs with no decoding, no model and no encoding of an answer; scanopt's
throughput over this one says how much of the stack's budget the service itself spends.
The answer has the size and shape of a real prediction, so the bytes on the wire match.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Litestar, Request, Response, get, post

from server import heap

__all__ = ["CONSTANT_ANSWER", "create_app"]

CONSTANT_ANSWER: Final = (
    b'{"prediction_id":"00000000000000000000000000000000","model_version":"ceiling",'
    b'"result_count":{"value":42.0,"lo":12.0,"hi":97.0},'
    b'"duration_s":{"value":3.1,"lo":1.9,"hi":5.6},"p_empty":0.031,"confidence":0.52}'
)


@post("/v1/predict", status_code=200)
async def predict(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The constant answer. The body is read (as any endpoint must) but never decoded."""
    # Answering before the body is read made Granian drop the keep-alive connection now
    # and then (a broken pipe on the client's next request).
    await request.body()
    return Response(content=CONSTANT_ANSWER, media_type="application/json")


@get("/health/ready")
async def ready() -> Response[bytes]:
    """Always ready: there is nothing to load."""
    return Response(content=b'{"status":"ready"}', media_type="application/json")


def create_app() -> Litestar:
    """The ceiling app (a factory, so Granian builds it in each worker)."""
    # Under the same runtime as scanopt, whose ready worker freezes its start-up heap
    # (server.heap; SCANOPT_GC_FREEZE), so the ratio compares the request paths only.
    return Litestar(
        route_handlers=[predict, ready],
        openapi_config=None,
        on_startup=[heap.freeze],
        on_shutdown=[heap.thaw],
    )
