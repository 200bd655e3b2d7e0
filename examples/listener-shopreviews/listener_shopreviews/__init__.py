"""Example listener plugin: product reviews from a shop's review API."""
