"""Autobahn|Testsuite conformance gate for picows.

``python -m conformance`` runs wstest against the testees (echo_server.py,
echo_client.py) and judges the reports (gate.py).  Only the testees import
picows, so the gate and runner import without a built picows.
"""
