"""Test kit for listener and its plugins (also loaded as a pytest plugin).

Fixtures are added here as the plugin SDK grows; importing this module must
stay cheap because pytest loads it in every test session.
"""
