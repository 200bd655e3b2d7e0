"""What third parties build source plugins with: the source contract, hooks, plugin manager,
contract checks, scaffold, test kit and replay server.

Plugins import through the stable paths ``listener.hookimpl``, ``listener.source``,
``listener.mention``, ``listener.sourcekit`` and ``listener.testing``, which re-export
what lives here.
"""
