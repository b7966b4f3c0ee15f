"""Checks events/hr/*.json against the published JSON Schema: valid-* must pass, invalid-* fail.
The Rust parser is held to the same files by shared's unit tests, so schema and code agree."""
import json
import pathlib
import sys

import jsonschema

root = pathlib.Path(__file__).resolve().parents[2] / "events"
schema = json.loads((root / "hr-event.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
problems = []
files = sorted((root / "hr").glob("*.json"))
for path in files:
    errors = list(validator.iter_errors(json.loads(path.read_text())))
    if path.name.startswith("valid-") and errors:
        problems.append(f"{path.name}: should be valid: {errors[0].message}")
    if path.name.startswith("invalid-") and not errors:
        problems.append(f"{path.name}: should be invalid but the schema accepts it")
for p in problems:
    print(p, file=sys.stderr)
print(f"{len(files) - len(problems)} passed, {len(problems)} failed")
sys.exit(1 if problems else 0)
