"""Scrapy project settings for ``scrapy crawl mentions`` (see scrapy.cfg).

Only what Scrapy needs to find the spider lives here; everything else comes
from the project file named by ``-s LISTENER_CONFIG=…`` (default
``listener.toml``), applied by the spider itself.
"""

BOT_NAME = "listener"
SPIDER_MODULES = ["listener.spiders"]
NEWSPIDER_MODULE = "listener.spiders"
ROBOTSTXT_OBEY = True
