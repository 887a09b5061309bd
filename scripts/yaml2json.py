#!/usr/bin/env python3
"""Converts the OpenAPI YAML document to JSON (build step); fails on bad YAML."""
import json
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    doc = yaml.safe_load(f)
if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
    sys.exit("openapi.yaml: not an OpenAPI 3.1 document")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
