"""Typed inputs and outputs of every served task (pydantic): what ``/docs`` (OpenAPI) shows for ``POST /predict``,
and the check that answers a malformed input with a 422 naming its field, after the JSON guards of
``protocol.py`` (size, depth, huge integers) have passed.

The models follow each family's request form (its ``parse_request`` and ``render``) and check types only, so
that the task's own reader still decides the rest (an empty text, a predicate index out of range) with its own
message: a request the models pass is read exactly as before.  GLUE/SuperGLUE pair tasks take their files'
text fields or the hub's names for them; the other record tasks (COPA, WiC, WSC, MultiRC, ReCoRD) and a family
without a model here take any JSON object, documented as the task's file record.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter, ValidationError, create_model
from pydantic.json_schema import models_json_schema


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # other keys go to the task as they are


class NerInput(_Open):
    """NER: pre-split words, or a text split on whitespace."""

    tokens: list[StrictStr] | None = Field(None, description="the words, pre-split")
    text: StrictStr | None = Field(None, description="a text, split on whitespace (when no tokens are given)")


class NerOutput(BaseModel):
    tokens: list[str]
    tags: list[str] = Field(description="one tag per word")


class SrlInput(NerInput):
    """SRL: the words (or a text) and the predicates to label, one frame each."""

    predicates: list[StrictInt] = Field(description="word indices of the predicates, distinct")


class SrlArgument(BaseModel):
    role: str
    start: int
    end: int = Field(description="the last word of the argument (inclusive)")
    text: str


class SrlFrame(BaseModel):
    predicate_index: int
    predicate: str
    tags: list[str]
    arguments: list[SrlArgument]


class SrlOutput(BaseModel):
    tokens: list[str]
    frames: list[SrlFrame]


class QaInput(_Open):
    """Extractive QA: the answer is a span of the context."""

    question: StrictStr
    context: StrictStr


class QaOutput(BaseModel):
    answer: str = Field(description="a span of the context (empty: no answer, SQuAD 2.0)")
    null_odds: float | None = Field(None, description="SQuAD 2.0 tasks: the no-answer score minus the best span's")


class RecordOutput(BaseModel):
    """GLUE/SuperGLUE: a label (classification), a score (regression), or the submission's own shape (MultiRC)."""

    label: str | list[str] | None = None
    score: float | list[float] | None = None
    prediction: Any = None


class ErrorBody(BaseModel):
    error: str
    status: int


INPUTS: dict[str, type[BaseModel]] = {"ner": NerInput, "srl": SrlInput, "qa": QaInput}
OUTPUTS: dict[str, type[BaseModel]] = {"ner": NerOutput, "srl": SrlOutput, "qa": QaOutput, "glue": RecordOutput,
                                       "superglue": RecordOutput}


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def text_fields(task: Any) -> tuple[str, ...] | None:
    """A GLUE/SuperGLUE pair task's text fields (its files' names, then the hub's), or None for another task; the
    engine's worker describes each task with it (``worker.describe``), so the front end needs no task object."""
    spec = getattr(task, "spec", None)
    fields = getattr(spec, "fields", None) or {}
    if "a" not in fields:
        return None
    columns = [fields[role] for role in ("a", "b") if role in fields]
    return tuple(dict.fromkeys(columns + [h for h in getattr(spec, "hub_text", ()) if h]))


def record_input(task_name: str, names: tuple[str, ...] | None) -> type[BaseModel] | None:
    """The input model of a task whose record texts go under ``names`` (``text_fields``); None without names."""
    if not names:
        return None
    model = create_model(f"{_ident(task_name)}_input", __base__=_Open, **{
        f"field{i}": (StrictStr | None, Field(None, alias=name, description="a text of the record"))
        for i, name in enumerate(names)})
    model.__doc__ = f"{task_name}: one record, its texts under {' or '.join(map(repr, names))} names"
    return model


class TaskSchema:
    """One served task's input and output models, and the check of its inputs."""

    def __init__(self, name: str, view: Any) -> None:
        """``view``: the task's ``worker.TaskView`` (its family's name and text fields)."""
        self.name = name
        self.input = INPUTS.get(view.family) or record_input(name, view.text_fields)
        self.output = OUTPUTS.get(view.family)
        self._adapter = TypeAdapter(self.input) if self.input is not None else None

    def problem(self, payload: Any, where: str = "input") -> str | None:
        """Why ``payload`` is not an input of this task, naming its fields; None when its types are right."""
        if self._adapter is None:
            return None
        try:
            self._adapter.validate_python(payload)
        except ValidationError as err:
            shown = [f"{where}{_location(e['loc'])}: {e['msg']}" for e in err.errors()[:3]]
            more = f" (and {err.error_count() - 3} more)" if err.error_count() > 3 else ""
            return f"task '{self.name}': {'; '.join(shown)}{more}"
        return None

    def models(self) -> tuple[list[type[BaseModel]], list[type[BaseModel]]]:
        """(request models, response models) of ``POST /predict`` for this task: one input, several inputs."""
        ident = _ident(self.name)
        given: Any = self.input or dict[str, Any]
        output: Any = self.output or dict[str, Any]
        named = Literal[self.name]  # type: ignore[valid-type]
        one = create_model(f"{ident}_request", task=(named, ...), input=(given, ...))
        many = create_model(f"{ident}_requests", task=(named, ...), inputs=(list[given], Field(min_length=1)))
        item = create_model(f"{ident}_item", output=(output | None, None), error=(str | None, None),
                            status=(int | None, None))
        answer = create_model(f"{ident}_answer", task=(named, ...), output=(output, ...), seconds=(float, ...))
        answers = create_model(f"{ident}_answers", task=(named, ...), outputs=(list[item], ...), seconds=(float, ...))
        return [one, many], [answer, answers]


def _location(loc: tuple) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


class Schemas:
    """Every served task's ``TaskSchema``, and the OpenAPI document of ``POST /predict`` built from them."""

    def __init__(self, tasks: dict[str, Any]) -> None:
        self.tasks = {name: TaskSchema(name, view) for name, view in tasks.items()}

    def problem(self, task: str, payload: Any, where: str = "input") -> str | None:
        return self.tasks[task].problem(payload, where)

    def document(self, openapi: dict[str, Any], path: str = "/predict") -> dict[str, Any]:
        """``openapi`` (FastAPI's document) with each task's request and response bodies on ``path``."""
        requests, responses = [], []
        for schema in self.tasks.values():
            asked, answered = schema.models()
            requests += asked
            responses += answered
        refs, top = models_json_schema([(m, "validation") for m in requests] +
                                       [(m, "serialization") for m in [*responses, ErrorBody]],
                                       ref_template="#/components/schemas/{model}")
        openapi.setdefault("components", {}).setdefault("schemas", {}).update(top.get("$defs", {}))
        operation = openapi["paths"][path]["post"]
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [refs[(m, "validation")] for m in requests]}}}}
        error = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
        operation["responses"] = {
            "200": {"description": "the task's answer (one per input, in order, for \"inputs\")",
                    "content": {"application/json": {"schema": {
                        "oneOf": [refs[(m, "serialization")] for m in responses]}}}},
            **{str(status): {"description": what, "content": error} for status, what in ERRORS.items()}}
        return openapi


ERRORS = {400: "not a request: not UTF-8, not JSON, nested too deep, a huge integer, not {task, input}",
          404: "unknown task", 408: "the body did not arrive in time",
          413: "over a bound: the body (--max-body-bytes), or the input (--max-request-rows, --max-request-tokens)",
          422: "an input the task cannot read (the message names the field)", 500: "a fault of the server",
          503: "overloaded, shutting down or not ready; with Retry-After"}
