"""The example plugin's own tests, run by its authors (listener's suite tests it too)."""

from __future__ import annotations

from pathlib import Path

from listener_shopreviews.source import ShopReviewsSource

FIXTURES = Path(ShopReviewsSource.fixtures_dir or ".")


def test_reviews_are_replayed_with_ratings(replay_crawl):
    result = replay_crawl("shopreviews", {"base_url": "{base_url}", "skus": ["RKT-14"]}, FIXTURES)
    assert [m.rating.raw for m in result.mentions if m.rating] == [5.0, 2.0, 4.0]
    assert [m.rating.value for m in result.mentions if m.rating] == [1.0, 0.25, 0.75]
