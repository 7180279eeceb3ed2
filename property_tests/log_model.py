"""Valid logs for the property tests: chronolog.testing's public ``event_logs()``.

The model that writes them lives in ``chronolog.testing`` so that users can
generate the same logs; this module keeps the name the property tests use.
"""

from chronolog.testing.strategies import event_logs as valid_logs

__all__ = ["valid_logs"]
