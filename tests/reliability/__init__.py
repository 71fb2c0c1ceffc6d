"""Reliability tests: the real server under faults, crashes, bursts and time.

Each test runs its own server process (or the module's), so that a server it
kills, signals or fills up leaves no mark on any other test.
"""
