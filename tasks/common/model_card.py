"""An artifact's model card: ``README.md`` with the Hub's YAML metadata, then a short text.

The metadata (``huggingface_hub.ModelCardData``) says what the Hub indexes: ``base_model`` (the encoder's Hub id, when
it has one), ``library_name``, ``pipeline_tag``, ``datasets``, ``tags`` (the method among them) and, once the run is
evaluated, ``model-index`` with the headline metric of every evaluated split (values from metrics.json, in percent).
The text names the method and its trainable share, the encoder and how to load and predict.
"""
from __future__ import annotations

from typing import Any

LIBRARY = "ptv2-nlu"
# the Hub's pipeline tag of each head
PIPELINE_TAGS = {"token-classification": "token-classification", "span": "question-answering",
                 "sequence-classification": "text-classification", "regression": "text-classification",
                 "span-pair-classification": "text-classification", "multiple-choice": "multiple-choice"}
# datasets of the families as the Hub names them (others: the name the artifact records)
HUB_DATASETS = {"conll2003": "eriktks/conll2003", "squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2",
                "glue": "nyu-mll/glue", "superglue": "aps/super_glue"}


def members_of(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{member name: {"task", "head"}}: a single-task artifact is one member named after its dataset."""
    if config.get("members"):
        return config["members"]
    return {dataset_name(config["task"]): {"task": config["task"], "head": config["head"]}}


def dataset_name(record: dict[str, Any]) -> str:
    """The dataset a task record was trained on: its ``dataset``, else GLUE's ``benchmark/name``, else the family."""
    if record.get("dataset"):
        return str(record["dataset"])
    if record.get("benchmark") and record.get("name"):
        return f"{record['benchmark']}/{record['name']}"
    return str(record.get("name") or record.get("family") or "task")


def hub_dataset(record: dict[str, Any]) -> str:
    name = str(record.get("dataset") or record.get("benchmark") or record.get("family") or "")
    return HUB_DATASETS.get(name, name)


def eval_results(config: dict[str, Any], metrics: dict[str, Any] | None) -> list:
    """``EvalResult`` of every member's headline metric on every evaluated split."""
    from huggingface_hub import EvalResult

    if not metrics:
        return []
    members = members_of(config)
    per_member = metrics.get("members") or {next(iter(members)): metrics}
    out = []
    for name, scores in per_member.items():
        member = members.get(name) or next(iter(members.values()))
        metric = (scores.get("headline") or {}).get("metric")
        for split, values in scores.items():
            if not isinstance(values, dict) or not isinstance(values.get(metric), (int, float)):
                continue
            out.append(EvalResult(task_type=PIPELINE_TAGS.get(member["head"]["name"], "text-classification"),
                                  dataset_type=hub_dataset(member["task"]), dataset_name=dataset_name(member["task"]),
                                  dataset_split=split, metric_type=metric, metric_value=round(values[metric], 4),
                                  metric_name=f"{metric} (%)"))
    return out


def metadata(config: dict[str, Any], metrics: dict[str, Any] | None) -> str:
    """The YAML block (without the ``---`` fences)."""
    from huggingface_hub import ModelCardData

    members = members_of(config)
    first = next(iter(members.values()))
    families = sorted({str(m["task"].get("family")) for m in members.values() if m["task"].get("family")})
    data = ModelCardData(
        base_model=(config.get("encoder") or {}).get("hub_id"), library_name=LIBRARY,
        pipeline_tag=PIPELINE_TAGS.get(first["head"]["name"]),
        datasets=sorted({hub_dataset(m["task"]) for m in members.values() if hub_dataset(m["task"])}) or None,
        tags=[LIBRARY, "p-tuning-v2", config["method"]["name"], *families],
        eval_results=eval_results(config, metrics) or None, model_name=_title(config, members),
    )
    return data.to_yaml()


def _title(config: dict[str, Any], members: dict[str, Any]) -> str:
    return f"{config['method']['name']} on {', '.join(members)}"


def card_text(config: dict[str, Any], metrics: dict[str, Any] | None = None) -> str:
    """The whole ``README.md``."""
    members = members_of(config)
    encoder = config.get("encoder") or {}
    trainable = config.get("trainable") or {}
    share = (f"{trainable['parameters']:,} trainable parameters ({trainable['percent']:.3f}% of the model)"
             if trainable else "the trained tensors only")
    where = encoder.get("hub_id") or encoder.get("name")
    lines = [f"---\n{metadata(config, metrics).rstrip()}\n---", f"# {_title(config, members)}", "",
             f"Trained with `{LIBRARY}` (P-tuning v2 and its peers on a frozen encoder): method "
             f"`{config['method']['name']}`, {share}. The encoder is not in this repo: `{where}`"
             + (f" (PyPI package `{encoder['package']}`)" if encoder.get("package") else "")
             + f", fingerprint `{config['backbone_fingerprint']}` (checked on load).", ""]
    lines += [f"* `{name}`: {member['task'].get('family')} task, head `{member['head']['name']}`"
              for name, member in members.items()]
    lines += ["", _scores(config, metrics), "## Use", "", "```bash",
              f"python -m tasks.{next(iter(members.values()))['task'].get('family')} predict --artifact USER/REPO "
              "--input INPUT --output OUTPUT", "```", ""]
    return "\n".join(line for line in lines if line is not None)


def _scores(config: dict[str, Any], metrics: dict[str, Any] | None) -> str:
    results = eval_results(config, metrics)
    if not results:
        return ""
    rows = [f"| {r.dataset_name} | {r.dataset_split} | {r.metric_type} | {r.metric_value:.2f} |" for r in results]
    return "\n".join(["## Scores", "", "| dataset | split | metric | value (%) |", "| --- | --- | --- | --- |",
                      *rows, ""]) + "\n"
