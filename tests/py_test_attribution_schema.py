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
# the other direction (hf-to-ref): the same schema, with the direction and both switch flags
r2 = subprocess.run([cli, "attribute", "--direction", "hf-to-ref", "--decode-steps", "1",
                     "--quiet", "--json", "-"], capture_output=True, text=True)
if r2.returncode != 0:
    print("attribute --direction hf-to-ref failed:", r2.stderr[-2000:])
    sys.exit(1)
doc2 = json.loads(r2.stdout)
errors2 = list(v.iter_errors(doc2))
for e in errors2[:10]:
    print(f"hf-to-ref {e.json_path}: {e.message}")
dir_ok = (doc2.get("direction") == "hf-to-ref" and "direction" not in doc
          and all(k["implemented"] == k["switch"]["hf-to-ref"] for k in doc2["knobs"])
          and all("switch" not in k for k in doc["knobs"]))
if not dir_ok:
    print("hf-to-ref document: direction or switch flags wrong")
print(f"attribute JSON hf-to-ref: {len(errors2)} schema error(s)")
sys.exit(0 if not errors and not errors2 and rejected and dir_ok else 1)
