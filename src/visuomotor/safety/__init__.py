"""The safety bridge's pure core: profiles, workspace box, limiter, watchdog state machine.

Not a certified safety function; see bridge.DISCLAIMER.
"""
