#!/usr/bin/env python3
"""Validate `dsv32-parity attribute --json` on the built-in tiny model against
reports/schema/attribution.schema.json (optional: needs jsonschema; exits 77 = skipped without
it or without the CLI)."""
import json
import os
import subprocess
import sys

try:
    import jsonschema
except ImportError:
    print("jsonschema not installed: skipped")
    sys.exit(77)

src = os.environ.get("DSV32_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
cli = os.environ.get("DSV32_CLI")
if not cli:
    print("DSV32_CLI not set: skipped")
    sys.exit(77)
schema = json.load(open(os.path.join(src, "reports", "schema", "attribution.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
r = subprocess.run([cli, "attribute", "--decode-steps", "1", "--quiet", "--json", "-"],
                   capture_output=True, text=True)
if r.returncode != 0:
    print("attribute failed:", r.stderr[-2000:])
    sys.exit(1)
doc = json.loads(r.stdout)
v = jsonschema.Draft202012Validator(schema)
errors = list(v.iter_errors(doc))
for e in errors[:10]:
    print(f"{e.json_path}: {e.message}")
# the schema must reject what is wrong: a switch without its measurement, an unknown verdict
bad = json.loads(r.stdout)
del next(k for k in bad["knobs"] if k["implemented"])["alone"]
bad2 = json.loads(r.stdout)
bad2["rows"][0]["verdict"] = "fine"
rejected = not v.is_valid(bad) and not v.is_valid(bad2)
if not rejected:
    print("schema accepted an invalid document")
print(f"attribute JSON: {len(errors)} schema error(s)")
sys.exit(0 if not errors and rejected else 1)
