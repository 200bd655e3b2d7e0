"""The ``shopreviews`` source and an enrichment hook, written only against listener's public API."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field

from listener import hookimpl
from listener.config import ProjectConfig
from listener.mention import Author, Engagement, Mention, Rating, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import parse_time, to_count

PRODUCT_NAMES = ["Rocket 14", "Rocket 16"]


class ShopReviewsOptions(SourceOptions):
    """Options of a ``shopreviews`` entry."""

    base_url: str = "https://reviews.shop.example"
    skus: list[str] = Field(min_length=1)


class ShopReviewsSource(Source[ShopReviewsOptions]):
    """Reviews of listed products, newest first, 1-5 stars."""

    name = "shopreviews"
    kind = SourceKind.REVIEW
    api_version = 1  # the listener source contract this was written for
    download_delay = 0.5
    concurrency = 2
    example_options: dict[str, Any] = {"base_url": "{base_url}", "skus": ["RKT-14"]}
    fixtures_dir = Path(__file__).parent / "fixtures"

    def page_url(self, sku: str, page: int) -> str:
        return f"{self.options.base_url.rstrip('/')}/v1/products/{sku}/reviews?page={page}"

    def start_requests(self) -> Iterable[Request]:
        for sku in self.options.skus:
            yield Request(self.page_url(sku, 1), meta={"sku": sku, "page": 1})

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        data = response.json()
        sku = response.meta["sku"]
        product = data["product"]
        newer_than = self.newer_than(sku)
        for review in data["reviews"]:
            published = parse_time(review.get("submitted"))
            if published is None:
                raise ValueError(f"{response.url}: review without a submitted date")
            if newer_than is not None and published <= newer_than:
                return
            self.checkpoint.advance(sku, published)
            yield Mention.create(
                source=self.name,
                source_kind=self.kind,
                url=review["permalink"],
                title=review.get("headline"),
                text=review["body"],
                published_at=published,
                author=Author(name=review.get("nickname")),
                engagement=Engagement(likes=to_count(review.get("helpful_votes"))),
                rating=Rating.from_raw(float(review["stars"]), scale_max=5, scale_min=1),
                thread_id=product["id"],
            )
        page = response.meta["page"]
        if data.get("has_more") and page < self.options.max_pages:
            yield Request(self.page_url(sku, page + 1), meta={"sku": sku, "page": page + 1})


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    return [ShopReviewsSource]


@hookimpl
def listener_prepare_nlp(nlp: Any, config: ProjectConfig) -> None:
    """Tag the shop's product names as PRODUCT entities."""
    if "entity_ruler" in nlp.pipe_names:
        ruler = nlp.get_pipe("entity_ruler")
    elif "ner" in nlp.pipe_names:
        ruler = nlp.add_pipe("entity_ruler", before="ner")
    else:
        ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PRODUCT", "pattern": name} for name in PRODUCT_NAMES])
