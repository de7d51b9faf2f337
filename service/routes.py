"""HTTP routes: thin; the work lives in service.inference and service.model."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, Security, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.auth import KEY_HEADER
from service.config import Settings
from service.errors import ERROR_RESPONSES, ServiceError, too_many_files
from service.inference import overlay_png, score_uploads
from service.model import ModelService, model_ref
from service.page import PAGE
from service.schemas import ErrorPublic, HealthPublic, HeatmapFormat, ModelPublic, PredictPublic, ReloadPublic


def get_service(request: Request) -> ModelService:
    return request.app.state.service


ServiceDep = Annotated[ModelService, Depends(get_service)]
_key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False,
                           description="the service's API key (ANOMALY_API_KEY); `Authorization: Bearer` works too")


def _declare_key(key: Annotated[str | None, Security(_key_header)] = None) -> None:
    """OpenAPI only (the key shows in /docs): service.auth.ApiKeyMiddleware checks it, before the body is read."""


def build_router(settings: Settings) -> APIRouter:
    """Public health routes, and everything else behind the optional API key."""
    router = APIRouter()
    keyed = settings.api_key is not None
    protected = APIRouter(dependencies=[Depends(_declare_key)] if keyed else [],
                          responses={401: ERROR_RESPONSES[401]} if keyed else None)

    @router.get("/healthz", response_model=HealthPublic, tags=["health"])
    async def healthz() -> HealthPublic:
        """Alive: the process answers (it starts answering once the model is loaded and warmed up)."""
        return HealthPublic(status="ok")

    @router.get("/readyz", response_model=HealthPublic, tags=["health"],
                responses={503: {"model": HealthPublic, "description": "the inference worker is not running"}})
    async def readyz(service: ServiceDep):
        """Ready: the model is loaded and warmed up, and the inference worker runs."""
        if service.ready:
            return HealthPublic(status="ready")
        return JSONResponse(HealthPublic(status="not ready").model_dump(), status_code=503)

    @protected.post("/v1/predict", response_model=PredictPublic, tags=["scoring"],
                    responses={k: v for k, v in ERROR_RESPONSES.items() if k != 401})
    async def predict(
        service: ServiceDep,
        files: Annotated[list[UploadFile], File(description="one or more images (PNG, JPEG, BMP, TIFF, WebP)",
                                                min_length=1, max_length=settings.max_files)],
        heatmap: Annotated[HeatmapFormat, Query(description="none, png (base64 overlay) or raw (float32 map)")]
        = HeatmapFormat.none,
        threshold: Annotated[float | None, Query(allow_inf_nan=False,
                                                 description="override the calibrated threshold")] = None,
        regions: Annotated[bool, Query(description="include connected defect regions")] = True,
    ) -> PredictPublic:
        """Score images: raw and normalised score, verdict, threshold used, regions, optional heatmap."""
        detector, results = await score_uploads(service, files, threshold=threshold, heatmap=heatmap,
                                                regions=regions)
        return PredictPublic(model=model_ref(detector), results=results)

    @protected.post("/v1/heatmap", response_class=Response, tags=["scoring"],
                    responses={200: {"content": {"image/png": {}}, "description": "PNG overlay; headers "
                                     "X-Model-Name and X-Model-Version name the model that drew it"},
                               **{k: v for k, v in ERROR_RESPONSES.items() if k != 401}})
    async def heatmap(service: ServiceDep, request: Request,
                      file: Annotated[UploadFile, File(description="one image")]) -> Response:
        """One image in, its heatmap overlay out (image/png) at the image's own resolution, coloured on
        the calibration's fixed scale (a normal image stays blue)."""
        count = len((await request.form()).getlist("file"))  # the form FastAPI parsed, not parsed again
        if count > 1:
            raise ServiceError(422, "too_many_files", too_many_files(count, 1, "/v1/heatmap").detail)
        detector, png = await overlay_png(service, file)
        ref = model_ref(detector)  # which version drew it: replicas following an alias may be mid-switch
        return Response(png, media_type="image/png",
                        headers={"X-Model-Name": ref.name or "", "X-Model-Version": ref.version or "local"})

    @protected.get("/v1/model", response_model=ModelPublic, tags=["model"])
    async def model(service: ServiceDep) -> ModelPublic:
        """What is loaded: URI, name, version, run id, thresholds, input size, channels."""
        detector, calibration = service.detector, service.detector.calibration
        return ModelPublic(
            **model_ref(detector).model_dump(), architecture=detector.config.name,
            image_threshold=calibration.image_threshold, pixel_threshold=calibration.pixel_threshold,
            f1_threshold=calibration.f1_threshold, threshold_method=calibration.method,
            target_fpr=calibration.target_fpr, fpr_bound=calibration.fpr_bound, guarantee=calibration.guarantee(),
            input_size=tuple(detector.config.image_size),
            scale=detector.config.scale,
            channels=detector.config.channels, device=str(detector.device), loaded_at=service.loaded_at,
            ready=service.ready, last_reload=service.last_reload)

    @protected.post("/v1/model/reload", response_model=ReloadPublic, tags=["model"],
                    responses={502: {"model": ErrorPublic,
                                     "description": "reload failed; the previous model keeps serving"}})
    async def reload(service: ServiceDep) -> ReloadPublic:
        """Load the model URI again (picks up a moved registry alias); a failure keeps the old model."""
        return await service.reload()

    @protected.get("/metrics", response_class=Response, tags=["health"],
                   responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: requests and latency by route and status, batch sizes, scores, anomalies."""
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        """A drop-an-image page (static; it calls /v1/predict, sending the API key the user types)."""
        return HTMLResponse(PAGE)

    router.include_router(protected)
    return router
