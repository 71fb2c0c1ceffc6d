"""Accounts: users, their passwords and login sessions, profiles and avatars.

``service`` is what the HTTP API calls; ``passwords``, ``names``,
``throttle`` and ``avatars`` are its parts, each usable on its own. This
package uses the store and nothing of the network.
"""
