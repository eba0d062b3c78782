"""What a classification returns, over HTTP and from the Celery task alike."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    label: str
    score: float = Field(ge=0.0, le=1.0, description="Softmax probability of the label.")


class VideoSummary(BaseModel):
    duration_s: float = Field(description="Frames divided by fps; 0 when the fps is unknown.")
    fps: float = Field(description="Frames per second the container reports; 0 when unknown.")
    frames: int
    width: int
    height: int


class Timings(BaseModel):
    decode: float = Field(description="Milliseconds spent decoding and preparing frames.")
    inference: float = Field(description="Milliseconds spent running the model.")
    total: float = Field(
        description="Milliseconds the server spent on the request, upload included."
    )


class Verdict(BaseModel):
    """The ranked labels of a clip or segment, and whether the action looks like a known one."""

    predictions: list[Prediction] = Field(description="Most likely labels first.")
    confident: bool = Field(
        description="False when the clip is far from every action the model was trained on, "
        "or the model is more torn between labels than on almost every clip it was validated "
        "on (an unseen action); always true for a model without an open-set output."
    )
    top_label: str = Field(
        description="The first prediction's label, or `unknown` when not confident."
    )
    ood_distance: float | None = Field(
        default=None,
        description="Distance to the nearest known action (smaller: more like the clips the "
        "model was trained on; each model has its own scale); above the model's threshold the "
        "answer is not `confident`.",
    )


class Segment(Verdict):
    start_s: float
    end_s: float


class ClassifyResponse(Verdict):
    model: str = Field(description="Name of the classifier that ran.")
    video: VideoSummary
    timings_ms: Timings
    segments: list[Segment] | None = Field(
        default=None, description="Per-window answers, when asked for with `segments=true`."
    )

    def with_total_ms(self, total_ms: float) -> ClassifyResponse:
        timings = self.timings_ms.model_copy(update={"total": round(total_ms, 2)})
        return self.model_copy(update={"timings_ms": timings})
