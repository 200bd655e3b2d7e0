"""The index mapping and the Mention model hold the same fields, and the mapping is strict."""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch
from pydantic import BaseModel

from listener.config import ProjectConfig
from listener.mention import Author, BrandMatch, Entity, Mention, Rating, Sentiment, Span
from listener.store.indexer import Indexer, load_templates


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models inside an annotation (through Optional, list, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        found: list[type[BaseModel]] = []
        for argument in typing.get_args(annotation):
            found.extend(_models_in(argument))
        return found
    return []


def _compare(model: type[BaseModel], properties: dict[str, Any], path: str) -> list[str]:
    """Differences between a model's fields and a mapping's properties, recursively."""
    problems = []
    fields = set(model.model_fields)
    mapped = set(properties)
    for name in sorted(fields - mapped):
        problems.append(f"{path}{name}: in {model.__name__} but not in the mapping")
    for name in sorted(mapped - fields):
        problems.append(f"{path}{name}: in the mapping but not in {model.__name__}")
    for name in sorted(fields & mapped):
        nested_models = _models_in(model.model_fields[name].annotation)
        nested = properties[name].get("properties")
        if nested_models:
            if nested is None:
                problems.append(f"{path}{name}: a {nested_models[0].__name__} but mapped as a leaf")
                continue
            problems.extend(_compare(nested_models[0], nested, f"{path}{name}."))
        elif nested is not None:
            problems.append(f"{path}{name}: object in the mapping, plain value in the model")
    return problems


def _mapping() -> dict[str, Any]:
    raw = files("listener.index_templates").joinpath("mentions.json").read_text(encoding="utf-8")
    return json.loads(raw.replace("{prefix}", "x"))["template"]["mappings"]


def test_template_fields_equal_the_mention_model_at_every_level() -> None:
    mapping = _mapping()
    assert _compare(Mention, mapping["properties"], "") == []


def test_mapping_is_strict_everywhere() -> None:
    mapping = _mapping()
    assert mapping["dynamic"] == "strict"

    def objects(properties: dict[str, Any]) -> list[dict[str, Any]]:
        inner = [p for p in properties.values() if "properties" in p]
        return inner + [o for p in inner for o in objects(p["properties"])]

    # Objects inherit "strict" from the root unless they set "dynamic" themselves.
    assert all(o.get("dynamic", "strict") == "strict" for o in objects(mapping["properties"]))


def test_template_names_and_patterns_use_the_prefix() -> None:
    templates = load_templates("acme")
    assert list(templates) == ["acme-mentions"]
    body = templates["acme-mentions"]
    assert body["index_patterns"] == ["acme-mentions-*"]
    assert body["template"]["aliases"] == {"acme-mentions": {}}
    assert "{prefix}" not in json.dumps(body)


def _full_mention() -> Mention:
    """A mention with every field set, so every mapped type is exercised."""
    return Mention.create(
        source="testsource",
        source_kind="review",
        url="https://shop.example.com/reviews/1?utm_source=x",
        title="Acme anvil review",
        text="The Acme anvil is great.",
        language="en",
        published_at=datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC),
        author=Author(name="Wile", handle="@wile", url="https://example.com/wile", followers=12),
        engagement={"likes": 3, "comments": 2, "shares": 1, "views": 100, "score": -4},
        rating=Rating.from_raw(4, 5, 1),
        thread_id="t1",
        parent_id="p1",
        brands=[
            BrandMatch(
                brand="Acme",
                keyword="acme",
                positions=[Span(start=4, end=8)],
                sentiment=Sentiment(score=0.6, label="positive"),
                owned=False,
            )
        ],
        brand_names=["Acme"],
        entities=[Entity(text="Acme", label="ORG")],
        sentiment=Sentiment(score=0.6, label="positive"),
    )


def test_a_fully_populated_mention_is_accepted(
    client: Elasticsearch, project: ProjectConfig
) -> None:
    indexer = Indexer(client, project)
    mention = _full_mention()
    assert indexer.index([mention]).indexed == 1
    indexer.refresh()
    stored = client.get(index=indexer.index_name_for(mention), id=mention.id)["_source"]
    assert Mention.model_validate(stored) == mention


def test_engine_rejects_unknown_fields(client: Elasticsearch, project: ProjectConfig) -> None:
    indexer = Indexer(client, project)
    indexer.install_templates()
    document = _full_mention().to_document()
    index = indexer.index_name_for(_full_mention())
    with pytest.raises(BadRequestError) as top_level:
        client.index(index=index, id="x1", document={**document, "unexpected": 1})
    assert "strict" in str(top_level.value)
    nested_author = {**document, "author": {**document["author"], "nickname": "w"}}
    with pytest.raises(BadRequestError):
        client.index(index=index, id="x2", document=nested_author)
    nested_brand = {**document, "brands": [{**document["brands"][0], "extra": True}]}
    with pytest.raises(BadRequestError):
        client.index(index=index, id="x3", document=nested_brand)
