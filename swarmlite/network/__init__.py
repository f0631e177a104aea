"""Node networking: the WireGuard mesh, overlay networks, container attachment, DNS and VIPs.

Implements the NetworkDriver contract of swarmlite/agent/driver.py. Modules import each other by
name (``from swarmlite.network import mesh``); this file stays free of imports.
"""
