"""The HR event contract, checked the other way: every case of events/hr/cases.json must make the
JSON Schema (events/hr-event.schema.json) report exactly the (field, rule) pairs the case expects.
shared/tests/contract_corpus.rs holds the Rust parser to the same manifest, so schema and parser
agree case by case.

A schema error names its rule by its keyword (NATURAL below) or by the x-rule of the subschema
holding the keyword; its field is the dotted path of the value (plus the property, for required
and additionalProperties). Five rules are not the schema's to express; this script checks them
itself, in the part marked CHECKED HERE, as the parser does: body-size, json, duplicate-key,
future and horizon.

Prints one line per case that disagrees and a summary; exits 1 if any does."""
import calendar
import copy
import json
import pathlib
import re
import sys

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2] / "events"
SCHEMA = json.loads((ROOT / "hr-event.schema.json").read_text(encoding="utf-8"))
MANIFEST = json.loads((ROOT / "hr" / "cases.json").read_text(encoding="utf-8"))

NATURAL = {
    "required": "required",
    "type": "type",
    "additionalProperties": "unknown-field",
    "enum": "enum",
    "const": "enum",
    "pattern": "pattern",
    "minLength": "length",
    "maxLength": "length",
    "minimum": "range",
    "maximum": "range",
    "multipleOf": "multiple-of",
}
RULES = {
    "body-size", "json", "duplicate-key", "unknown-field", "required", "type", "enum", "pattern", "length",
    "charset", "invisible", "trailing-period", "email-format", "email-domain", "timestamp", "future", "horizon",
    "range", "multiple-of", "unknown-profile", "move-target", "not-allowed",
}


def field_name(path):
    """The parser's field name: the dotted path, cut to 80 characters (FieldError::new)."""
    return path if len(path) <= 80 else path[:79] + "\u2026"


def x_rules(node):
    """Every x-rule of the schema."""
    if isinstance(node, dict):
        return ({node["x-rule"]} if "x-rule" in node else set()).union(*[x_rules(v) for v in node.values()])
    if isinstance(node, list):
        return set().union(*[x_rules(v) for v in node])
    return set()


def validator_for(backend):
    """The schema, with the ds-data user-name rules in place of the default ones for ds-data."""
    schema = copy.deepcopy(SCHEMA)
    if backend == "ds-data":
        schema["properties"]["employee"]["properties"]["username"] = schema["$defs"]["username_ds_data"]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_pairs(validator, value):
    """The (field, rule) pairs of every schema error."""
    pairs = set()
    for error in validator.iter_errors(value):
        rule = error.schema.get("x-rule") or NATURAL.get(error.validator)
        if rule not in RULES:
            raise SystemExit(f"no rule for the schema keyword {error.validator!r} at {list(error.schema_path)}")
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            names = [p for p in error.validator_value if p not in error.instance]
        elif error.validator == "additionalProperties":
            names = [k for k in error.instance if k not in error.schema.get("properties", {})]
        else:
            names = [None]
        for name in names:
            field = ".".join(path + ([name] if name is not None else []))
            pairs.add((field_name(field) if field else "(body)", rule))
    return pairs


# ---------------------------------------------------------------------------------------------
# CHECKED HERE: the rules JSON Schema cannot express, as the parser (HrEvent::parse) checks them.
MAX_BODY_BYTES = 16 * 1024  # MAX_BODY_BYTES
MAX_DEPTH = 127  # serde_json's nesting limit (128 levels fail)
CLOCK_SKEW_MS = 300 * 1000  # CLOCK_SKEW_SECONDS' default
HORIZON_MS = 400 * 86_400 * 1000  # EFFECTIVE_HORIZON_DAYS' default
TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


class Pairs(list):
    """An object's members in document order, duplicates kept (json.loads' object_pairs_hook)."""


def reject(token):
    raise ValueError(f"{token} is not JSON")


def number(text, read):
    """A number as serde_json reads it: an integer beyond 64 bits becomes a double, and a double
    must be finite (float() of a huge int raises OverflowError)."""
    value = read(text)
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        value = float(value)
    if abs(float(value)) == float("inf"):
        raise ValueError("number out of range")
    return value


def strict_json(raw):
    """The body as strict JSON, or the one (field, rule) pair that stops the parser there:
    body-size, then json (syntax, NaN, overflow, lone surrogates, depth: anywhere in the body),
    then duplicate-key."""
    if len(raw) > MAX_BODY_BYTES:
        return None, ("(body)", "body-size")
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=Pairs,
            parse_constant=reject,
            parse_float=lambda s: number(s, float),
            parse_int=lambda s: number(s, int),
        )
    except (ValueError, OverflowError, RecursionError):
        return None, ("(body)", "json")

    def not_json(node, depth):
        """What serde_json refuses that json.loads takes: lone surrogates, nesting over 127."""
        if isinstance(node, str):
            return re.search("[\ud800-\udfff]", node) is not None
        if isinstance(node, list):
            if depth > MAX_DEPTH:
                return True
            members = node if isinstance(node, Pairs) else [("", item) for item in node]
            return any(not_json(key, depth) or not_json(item, depth + 1) for key, item in members)
        return False

    def first_duplicate(node, path):
        """The path of the first key given twice, in document order (an array item is "[i]")."""
        if not isinstance(node, list):
            return None
        seen = set()
        members = node if isinstance(node, Pairs) else [(f"[{i}]", item) for i, item in enumerate(node)]
        for key, item in members:
            child = f"{path}.{key}" if path else key
            if isinstance(node, Pairs):
                if key in seen:
                    return child
                seen.add(key)
            found = first_duplicate(item, child)
            if found is not None:
                return found
        return None

    if not_json(value, 1):
        return None, ("(body)", "json")
    duplicate = first_duplicate(value, "")
    if duplicate is not None:
        return None, (field_name(duplicate), "duplicate-key")

    def plain(node):
        if isinstance(node, Pairs):
            return {k: plain(v) for k, v in node}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node

    value = plain(value)
    if not isinstance(value, dict):
        return None, ("(body)", "json")
    return value, None


def millis(text):
    """Milliseconds since 1970 of a timestamp the schema accepts (the parser truncates to ms)."""
    y, mo, d, h, mi, s, fraction, sign, oh, om = TIMESTAMP.fullmatch(text).groups()
    seconds = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s)))
    if sign:
        seconds -= (1 if sign == "+" else -1) * (int(oh) * 3600 + int(om) * 60)
    return seconds * 1000 + int((fraction or "0")[:3].ljust(3, "0"))


def time_pairs(value, now, reported):
    """future and horizon, for timestamps the schema found valid."""
    pairs = set()
    for field, limit, rule in [("occurred_at", CLOCK_SKEW_MS, "future"), ("effective_at", HORIZON_MS, "horizon")]:
        text = value.get(field)
        if isinstance(text, str) and not any(f == field for f, _ in reported) and millis(text) > now + limit:
            pairs.add((field, rule))
    return pairs


# ---------------------------------------------------------------------------------------------


def manifest_problems(cases, on_disk):
    """The manifest's own shape: files listed both ways, known backends and rules, names that say
    valid or invalid truthfully."""
    problems = [f"x-rule {rule!r} in the schema is not a rule" for rule in sorted(x_rules(SCHEMA) - RULES)]
    listed = {case["file"] for case in cases}
    problems += [f"{name}: not in cases.json" for name in sorted(on_disk - listed)]
    problems += [f"{name}: in cases.json, not in events/hr/" for name in sorted(listed - on_disk)]
    for case in cases:
        name, expect = case["file"], case["expect"]
        if case["backend"] not in ("any", "ds-data"):
            problems.append(f"{name}: backend {case['backend']!r} is neither any nor ds-data")
        if any(rule not in RULES for _, rule in expect) or len({tuple(p) for p in expect}) != len(expect):
            problems.append(f"{name} [{case['backend']}]: unknown rule or pair listed twice in {expect}")
        if name.startswith("valid-") and expect:
            problems.append(f"{name} [{case['backend']}]: a valid-* file must not break a rule")
    for name in listed:
        if not name.startswith("valid-") and not any(c["expect"] for c in cases if c["file"] == name):
            problems.append(f"{name}: an invalid-* file must break a rule with some backend")
    covered = {rule for case in cases for _, rule in case["expect"]}
    problems += [f"no case breaks the rule {rule}" for rule in sorted(RULES - covered - {"unknown-profile"})]
    return problems


def main():
    now = millis(MANIFEST["now"])
    validators = {backend: validator_for(backend) for backend in ("any", "ds-data")}
    cases = MANIFEST["cases"]
    on_disk = {p.name for p in (ROOT / "hr").glob("*.json")} - {"cases.json"}
    problems = manifest_problems(cases, on_disk)
    disagree = 0
    for case in cases:
        if case["file"] not in on_disk:
            continue
        raw = (ROOT / "hr" / case["file"]).read_bytes()
        value, stop = strict_json(raw)
        if stop is not None:
            got = {stop}
        else:
            got = schema_pairs(validators[case["backend"]], value)
            got |= time_pairs(value, now, got)
        expect = {tuple(pair) for pair in case["expect"]}
        if got != expect:
            missing = ", ".join(f"{f}:{r}" for f, r in sorted(expect - got)) or "-"
            extra = ", ".join(f"{f}:{r}" for f, r in sorted(got - expect)) or "-"
            problems.append(
                f"{case['file']} [{case['backend']}]: expected but not reported: {missing}; reported but not expected: {extra}"
            )
            disagree += 1
    for problem in problems:
        print(problem)
    covered = {rule for case in cases for _, rule in case["expect"]}
    print(
        f"{len(cases)} cases, {len(on_disk)} files, {len(covered)} rules: "
        f"{len(cases) - disagree} agree with the schema, {disagree} do not; {len(problems) - disagree} other problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
