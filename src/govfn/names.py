"""Kubernetes' DNS-1123 names: a function id is a label, since it names Kubernetes objects."""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_PATTERN = f"^{_LABEL}$"  # a label's length is checked apart: at most 63
DNS1123_LABEL = re.compile(DNS1123_LABEL_PATTERN)
DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")  # at most 253 characters
