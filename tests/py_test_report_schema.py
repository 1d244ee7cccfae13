#!/usr/bin/env python3
"""Validate drift reports against reports/schema/drift-report.schema.json (optional: needs the
jsonschema package; exits 77 = skipped without it)."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import jsonschema
except ImportError:
    print("jsonschema not installed: skipped")
    sys.exit(77)

src = os.environ.get("DSV32_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
build = os.environ.get("DSV32_BUILD_DIR", os.path.join(src, "build"))
schema = json.load(open(os.path.join(src, "reports", "schema", "drift-report.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)

failed = 0
with tempfile.TemporaryDirectory() as d:
    sample = os.path.join(d, "sample.json")
    subprocess.run([os.path.join(build, "test_reports"), "--write-sample", sample], check=True)
    reports = [sample]
    cli = os.environ.get("DSV32_CLI")
    real = os.path.join(d, "compare.json")
    if cli and subprocess.run([cli, "compare", "--help"], capture_output=True).returncode == 0:
        r = subprocess.run([cli, "compare", "--json", real], capture_output=True, text=True)
        if r.returncode in (0, 1) and os.path.exists(real):
            reports.append(real)
        else:
            print("compare did not produce a report:", r.stderr[-2000:])
            failed += 1
    for path in reports:
        doc = json.load(open(path))
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        for e in errors[:10]:
            print(f"{os.path.basename(path)}: {e.json_path}: {e.message}")
        failed += len(errors) > 0
    # a document that breaks the schema must be rejected
    bad = json.load(open(sample))
    bad["taps"][0]["kind"] = "bogus"
    if jsonschema.Draft202012Validator(schema).is_valid(bad):
        print("schema accepted an invalid tap kind")
        failed += 1
print(f"{len(reports)} report(s) validated, {failed} failed")
sys.exit(1 if failed else 0)
