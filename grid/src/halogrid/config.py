"""Run-time settings of one grid."""
from __future__ import annotations

from dataclasses import dataclass

from .bodylimit import API_MAX, POLICY_MAX, SCAN_RESULT_MAX, SMALL_MAX


@dataclass
class Config:
    db: str
    token_ttl: int = 900
    rate_limit: int = 600          # API calls per API key in each rate_window; 0 disables
    rate_window: float = 60.0      # seconds; tests shorten it to reach 429s quickly
    # failed authentications (token requests, bearer tokens) per client address in each
    # rate_window before that address gets 429s; 0 disables
    auth_fail_limit: int = 20
    # successful agent registrations per client address in each rate_window; 0 disables
    register_limit: int = 60
    # seconds a command (and its scan) may stay open: queued/pending counted from its
    # creation, started from its start; then it is failed with a reason. 0 = never
    command_timeout: float = 600.0
    missing_after: float = 90.0    # seconds without contact before a server is `missing`
    sweep_interval: float = 0.0    # 0 = derived from missing_after
    max_poll_wait: float = 30.0
    # largest request body in bytes, by route class (bodylimit.py): a command's result, a
    # configuration policy, any other /v1 body, anything else (registration, OAuth, ...)
    result_body_limit: int = SCAN_RESULT_MAX
    policy_body_limit: int = POLICY_MAX
    api_body_limit: int = API_MAX
    other_body_limit: int = SMALL_MAX

    def sweep_every(self) -> float:
        if self.sweep_interval > 0:
            return self.sweep_interval
        return max(0.2, min(5.0, self.missing_after / 4.0))
