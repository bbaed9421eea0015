"""Open Inference Protocol V2 (KServe / Triton HTTP), with binary tensor data.

GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{version}],
/v2/models/{name}[/versions/{version}]/ready; POST .../infer. Errors are {"error": ...}
with 400 (and the usual `kind` and `field`), as tritonclient expects.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import MediaType, Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec

from server.content_type import OPTIONAL_CONTENT_TYPE
from server.domain.artifact import MODEL_INPUT, MODEL_OUTPUTS
from server.domain.features import N_FEATURES
from server.errors import ModelNotFoundError, NotReadyError
from server.inference.model import LoadedModel
from server.inference.predictor import Predictor
from server.inference.v2_codec import HEADER_LENGTH, decode_infer, encode_infer
from server.routes.params import ID, ModelVersion
from server.schemas import (
    V2InferRequest,
    V2InferResponse,
    V2ModelMetadata,
    V2ModelReady,
    V2ServerMetadata,
    V2TensorMetadata,
)
from server.settings import Settings

__all__ = ["MODEL_NAME", "routes"]

MODEL_NAME: Final = "scanopt"
_PLATFORM: Final = "onnxruntime_onnx"
_INFER_OPT: Final = {"body": V2InferRequest, OPTIONAL_CONTENT_TYPE: True}
_INPUTS: Final = [V2TensorMetadata(name=MODEL_INPUT, datatype="FP32", shape=[-1, N_FEATURES])]
Req = Request[Any, Any, Any]
ModelName = Annotated[str, ID]
_OUTPUTS: Final = [V2TensorMetadata(name=n, datatype="FP32", shape=[-1]) for n in MODEL_OUTPUTS]
# The handlers return encoded bytes (JSON, or JSON then binary tensors): say which JSON.
_ANSWER: Final = {
    200: ResponseSpec(
        V2InferResponse,
        description="The outputs; with binary outputs requested the body is "
        "application/octet-stream: this JSON header, then the tensors' bytes",
    )
}


def routes(settings: Settings, predictor: Predictor, version: str) -> list[HTTPRouteHandler]:
    """The V2 handlers; `version` is the scanopt package version for GET /v2."""
    max_rows = settings.max_batch

    def served(name: str, wanted: str | None = None) -> LoadedModel:
        if name != MODEL_NAME:
            raise ModelNotFoundError(f"model {name!r} is not served here: expected {MODEL_NAME!r}")
        model = predictor.model
        if wanted is not None and wanted != model.version:
            raise ModelNotFoundError(
                f"model {name!r} version {wanted!r} is not served: serving {model.version!r}"
            )
        return model

    @get("/v2", tags=["v2"])
    async def server_metadata() -> V2ServerMetadata:
        """Server name, version and protocol extensions."""
        return V2ServerMetadata(name="scanopt", version=version, extensions=["binary_tensor_data"])

    # KServe's required_api.md: "The HTTP response status code indicates a boolean result
    # for the health request ... The HTTP request and response bodies should be empty."
    @get("/v2/health/live", tags=["v2"], media_type=MediaType.TEXT)
    async def live() -> Response[bytes]:
        """200 with an empty body while the worker answers."""
        return Response(b"", status_code=200, media_type=MediaType.TEXT)

    @get("/v2/health/ready", tags=["v2"], media_type=MediaType.TEXT)
    async def ready() -> Response[bytes]:
        """200 with an empty body once the model is loaded and warmed, 503 before."""
        status = 200 if predictor.ready else 503
        return Response(b"", status_code=status, media_type=MediaType.TEXT)

    def describe(name: str, wanted: str | None) -> V2ModelMetadata:
        model = served(name, wanted)
        return V2ModelMetadata(
            name=MODEL_NAME,
            versions=[model.version],
            platform=_PLATFORM,
            inputs=_INPUTS,
            outputs=_OUTPUTS,
        )

    def readiness(name: str, wanted: str | None) -> Response[V2ModelReady]:
        try:
            served(name, wanted)
        except NotReadyError:
            return Response(V2ModelReady(name=name, ready=False), status_code=503)
        return Response(V2ModelReady(name=name, ready=True))

    async def run(request: Req, name: str, wanted: str | None) -> Response[bytes]:
        served(name, wanted)
        call = decode_infer(await request.body(), request.headers.get(HEADER_LENGTH), max_rows)
        model, outputs = await predictor.infer(call.features)
        body, header_length = encode_infer(call, MODEL_NAME, model.version, outputs)
        if header_length is None:
            return Response(body, media_type="application/json")
        return Response(
            body,
            media_type="application/octet-stream",
            headers={HEADER_LENGTH: str(header_length)},
        )

    # One handler per protocol path: a handler on two paths would make the version a
    # query parameter of the unversioned one.
    @get("/v2/models/{name:str}", tags=["v2"])
    async def metadata(name: ModelName) -> V2ModelMetadata:
        """Name, versions, platform and tensor signatures of the model."""
        return describe(name, None)

    @get("/v2/models/{name:str}/versions/{model_version:str}", tags=["v2"])
    async def version_metadata(name: ModelName, model_version: ModelVersion) -> V2ModelMetadata:
        """The same for one version (404 unless it is the one in service)."""
        return describe(name, model_version)

    @get("/v2/models/{name:str}/ready", tags=["v2"])
    async def model_ready(name: ModelName) -> Response[V2ModelReady]:
        """200 with ready=true when the model can infer, 503 otherwise."""
        return readiness(name, None)

    @get("/v2/models/{name:str}/versions/{model_version:str}/ready", tags=["v2"])
    async def version_ready(name: ModelName, model_version: ModelVersion) -> Response[V2ModelReady]:
        """The same for one version."""
        return readiness(name, model_version)

    # tritonclient sends JSON infer requests without a content type, as Triton accepts.
    @post(
        "/v2/models/{name:str}/infer",
        status_code=200,
        opt=_INFER_OPT,
        tags=["v2"],
        responses=_ANSWER,
    )
    async def infer(request: Req, name: ModelName) -> Response[bytes]:
        """Run the model on "features" FP32 [n, N_FEATURES]; JSON or binary tensors."""
        return await run(request, name, None)

    @post(
        "/v2/models/{name:str}/versions/{model_version:str}/infer",
        status_code=200,
        opt=_INFER_OPT,
        tags=["v2"],
        responses=_ANSWER,
    )
    async def version_infer(
        request: Req, name: ModelName, model_version: ModelVersion
    ) -> Response[bytes]:
        """The same for one version (404 unless it is the one in service)."""
        return await run(request, name, model_version)

    return [
        server_metadata,
        live,
        ready,
        metadata,
        version_metadata,
        model_ready,
        version_ready,
        infer,
        version_infer,
    ]
