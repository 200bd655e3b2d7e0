"""The crawl stage: Scrapy glue (settings, middlewares, item pipelines), progress,
in-crawl duplicate lookup and source health. Sources themselves live in ``plugins/``;
the one generic spider in ``spiders/``.
"""
