"""Fails when the deployment template and the code disagree.

- Every environment variable a function reads (functions/*/src) is set on it in the template,
  and nothing else is; the local stack sets every variable it needs too.
- Every AWS action a function's code calls is granted to it, and nothing more. The calls are read
  from the source: the ports each function's service uses (`self.<port>.<method>(`), and the SDK
  operations each adapter method makes (`.client.<operation>()`).
- The local stack's queues, table and event source mappings (infra/local/stack.json) match the
  template's.
"""
import json
import pathlib
import re
import sys

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[1]
problems = []


def problem(text):
    problems.append(text)


template, matches = decode(str(ROOT / "infra/template.yaml"))
if matches:
    sys.exit(f"cannot read the template: {matches}")
resources = template["Resources"]
stack = json.loads((ROOT / "infra/local/stack.json").read_text())

# ---------------------------------------------------------------- code: env vars and AWS calls

ENV_READ = re.compile(r'env\.(?:required|optional|required_with)\(\s*"([A-Z][A-Z0-9_]*)"')
PORT_CALL = re.compile(r"self\s*\.\s*(store|workspaces|directory|requests|terminations|hr_events)\s*\.\s*([a-z_]+)\(")
# A queue handed to a helper that sends on it.
QUEUE_PASSED = re.compile(r"&self\s*\.\s*(requests|terminations|hr_events)\b")
SDK_CALL = re.compile(r"\.(client|data|ds)\s*\.\s*([a-z_]+)\(\)")
FN = re.compile(r"\n\s*(?:pub(?:\([a-z]+\))?\s+)?(?:async\s+)?fn\s+([a-z_]+)")
PORT_ADAPTER = {"store": "dynamo", "workspaces": "workspaces", "directory": "directory",
                "requests": "sqs", "terminations": "sqs", "hr_events": "sqs"}
SDK_SERVICE = {"dynamo": {"client": "dynamodb"}, "sqs": {"client": "sqs"}, "workspaces": {"client": "workspaces"},
               "directory": {"client": "workdocs", "data": "ds-data", "ds": "ds"}}
# Operations whose IAM action has another name, and actions an operation needs besides its own.
# TransactWriteItems is authorised per item: the joiner's transaction puts and checks a condition.
ACTION_NAME = {"sqs:SendMessageBatch": ["sqs:SendMessage"],
               "dynamodb:TransactWriteItems": ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"]}
IMPLIED = {"workspaces:CreateWorkspaces": ["workspaces:CreateTags"],
           "ds-data:CreateUser": ["ds:AccessDSData"], "ds-data:DescribeUser": ["ds:AccessDSData"],
           "ds-data:DisableUser": ["ds:AccessDSData"]}


def camel(snake):
    return "".join(part.capitalize() for part in snake.split("_"))


def segments(text):
    """(function name, body) for each fn in a Rust source file."""
    found = list(FN.finditer(text))
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        yield m.group(1), text[m.end():end]


def adapter_actions(adapter):
    text = (ROOT / f"shared/src/adapters/{adapter}.rs").read_text().split("#[cfg(test)]")[0]
    bodies = list(segments(text))  # a name can come twice (one impl per backend)
    by_method = {}
    for name, body in bodies:
        for field, op in SDK_CALL.findall(body):
            service = SDK_SERVICE[adapter].get(field)
            if service:
                for action in ACTION_NAME.get(f"{service}:{camel(op)}", [f"{service}:{camel(op)}"]):
                    by_method.setdefault(name, set()).update([action, *IMPLIED.get(action, [])])
    # A port method that calls a helper of the adapter (`self.employee_items(` → Query) makes the
    # helper's calls too.
    for _ in range(len(bodies)):
        for name, body in bodies:
            for helper in re.findall(r"self\s*\.\s*([a-z_]+)\(", body):
                if helper != name and helper in by_method:
                    by_method.setdefault(name, set()).update(by_method[helper])
    return by_method


ADAPTERS = {a: adapter_actions(a) for a in SDK_SERVICE}


# Helpers in services/mod.rs that a service hands a port to (`store.employees(`), with the
# helpers they call in turn (`settle` performs steps through `perform`).
HELPER_PORT_CALL = re.compile(r"(?<![.\w])(store)\s*\.\s*([a-z_]+)\(")
SERVICES_MOD = (ROOT / "shared/src/services/mod.rs").read_text().split("#[cfg(test)]")[0]
HELPER_BODIES = dict(segments(SERVICES_MOD))
HELPERS = {name: HELPER_PORT_CALL.findall(body) for name, body in HELPER_BODIES.items()}
for _ in range(len(HELPERS)):
    for name, body in HELPER_BODIES.items():
        for other in HELPER_BODIES:
            if other != name and re.search(rf"(?<![.\w]){other}\(", body):
                HELPERS[name] = sorted(set(HELPERS[name]) | set(HELPERS[other]))


def service_source(service):
    """A service's code: `services/<name>.rs`, or every file of `services/<name>/` (tests left out)."""
    single = ROOT / f"shared/src/services/{service}.rs"
    files = [single] if single.exists() else sorted((ROOT / f"shared/src/services/{service}").glob("*.rs"))
    return "".join(p.read_text().split("#[cfg(test)]")[0] for p in files)


def function_code(binary):
    src = ROOT / f"functions/{binary}/src"
    text = "".join(p.read_text() for p in sorted(src.glob("*.rs")))
    env = set(ENV_READ.findall(text))
    actions = set()
    for service in set(re.findall(r"shared::services::([a-z_]+)::", text)):
        body = service_source(service)
        calls = PORT_CALL.findall(body) + [(queue, "send") for queue in QUEUE_PASSED.findall(body)]
        for helper, helper_calls in HELPERS.items():
            if re.search(rf"(?<![.\w]){helper}(?:::<[^>]*>)?\(", body):
                calls += helper_calls
        for port, method in calls:
            actions |= ADAPTERS[PORT_ADAPTER[port]].get(method, set())
    return env, actions


# ---------------------------------------------------------------- template: what is granted and set

def flatten_actions(node):
    """Every action in a policy, through Fn::If branches."""
    out = set()
    if isinstance(node, dict):
        if "Fn::If" in node:
            for branch in node["Fn::If"][1:]:
                out |= flatten_actions(branch)
            return out
        if "Action" in node:
            acts = node["Action"]
            out |= set([acts] if isinstance(acts, str) else acts)
        for key in ("Statement",):
            if key in node:
                out |= flatten_actions(node[key])
    elif isinstance(node, list):
        for item in node:
            out |= flatten_actions(item)
    return out


global_env = set(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
functions = {r["Properties"]["CodeUri"].rsplit("/", 1)[-1]: (name, r) for name, r in resources.items()
             if r["Type"] == "AWS::Serverless::Function"}
queue_names = {}
for name, r in resources.items():
    if r["Type"] == "AWS::SQS::Queue":
        sub = r["Properties"]["QueueName"]["Fn::Sub"]
        queue_names[name] = sub.replace("${AWS::StackName}-", "")

local_functions = {f["binary"]: f for f in stack["functions"]}
for binary in sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists()):
    env_read, called = function_code(binary)
    if binary not in functions:
        problem(f"{binary}: no function in the template")
        continue
    logical, res = functions[binary]
    props = res["Properties"]
    env_set = global_env | set(props.get("Environment", {}).get("Variables", {}))
    for v in sorted(env_read - env_set):
        problem(f"{logical}: reads {v} but the template does not set it")
    for v in sorted(env_set - env_read):
        problem(f"{logical}: the template sets {v} but the code never reads it")
    granted = flatten_actions(props.get("Policies", []))
    for a in sorted(called - granted):
        problem(f"{logical}: calls {a} but is not granted it")
    for a in sorted(granted - called):
        problem(f"{logical}: is granted {a} but never calls it")
    if res.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
        problem(f"{logical}: BuildMethod must be rust-cargolambda")
    local = local_functions.get(binary)
    if local is None:
        problem(f"{binary}: not in infra/local/stack.json")
        continue
    local_env = set(local.get("environment", {})) | {"TABLE_NAME"}
    required = set(re.findall(r'env\.(?:required|required_with)\(\s*"([A-Z][A-Z0-9_]*)"',
                              "".join(p.read_text() for p in (ROOT / f"functions/{binary}/src").glob("*.rs"))))
    for v in sorted(required - local_env):
        problem(f"{binary}: the local stack does not set required {v}")
    memory = props.get("MemorySize", template["Globals"]["Function"].get("MemorySize"))
    if memory != local.get("memory_mb", 128):
        problem(f"{binary}: memory {memory} MB in the template, {local.get('memory_mb', 128)} locally")
    if props.get("Timeout") != local["timeout_s"]:
        problem(f"{binary}: timeout {props.get('Timeout')} in the template, {local['timeout_s']} locally")
    events = props.get("Events", {})
    sqs_events = [e["Properties"] for e in events.values() if e["Type"] == "SQS"]
    if len(sqs_events) != len(local.get("sqs", [])):
        problem(f"{binary}: {len(sqs_events)} SQS event sources in the template, {len(local.get('sqs', []))} locally")
    for e, m in zip(sqs_events, local.get("sqs", [])):
        queue = queue_names.get(e["Queue"]["Fn::GetAtt"][0])
        pairs = [("queue", queue, m["queue"]), ("BatchSize", e.get("BatchSize"), m["batch_size"]),
                 ("MaximumBatchingWindowInSeconds", e.get("MaximumBatchingWindowInSeconds", 0), m.get("batching_window_s", 0)),
                 ("MaximumConcurrency", e.get("ScalingConfig", {}).get("MaximumConcurrency"), m.get("max_concurrency")),
                 ("ReportBatchItemFailures", "ReportBatchItemFailures" in e.get("FunctionResponseTypes", []), m.get("report_batch_item_failures", True))]
        for what, deployed, locally in pairs:
            if deployed != locally:
                problem(f"{binary}: {what} is {deployed} in the template, {locally} locally")
    has_schedule = any(e["Type"] == "Schedule" for e in events.values())
    if has_schedule != ("schedule" in local):
        problem(f"{binary}: schedule in the template {has_schedule}, locally {'schedule' in local}")

# ---------------------------------------------------------------- queues and table

by_queue_name = {v: k for k, v in queue_names.items()}
for q in stack["queues"]:
    logical = by_queue_name.get(q["name"])
    if not logical:
        problem(f"queue {q['name']}: not in the template")
        continue
    p = resources[logical]["Properties"]
    if bool(p.get("FifoQueue", False)) != q.get("fifo", False):
        problem(f"queue {q['name']}: FifoQueue differs")
    if bool(p.get("ContentBasedDeduplication", False)) != q.get("content_based_deduplication", False):
        problem(f"queue {q['name']}: ContentBasedDeduplication differs")
    if p.get("VisibilityTimeout") != q["visibility_timeout_s"]:
        problem(f"queue {q['name']}: VisibilityTimeout {p.get('VisibilityTimeout')} vs {q['visibility_timeout_s']}")
    if not (p.get("SqsManagedSseEnabled") or p.get("KmsMasterKeyId")):
        problem(f"queue {q['name']}: not encrypted at rest")
    redrive = p.get("RedrivePolicy", {})
    dlq = q.get("dlq")
    if dlq:
        if redrive.get("maxReceiveCount") != dlq["max_receive_count"]:
            problem(f"queue {q['name']}: maxReceiveCount differs")
        target = redrive.get("deadLetterTargetArn", {}).get("Fn::GetAtt", [None])[0]
        if queue_names.get(target) != dlq["name"]:
            problem(f"queue {q['name']}: DLQ is {queue_names.get(target)} in the template, {dlq['name']} locally")
        if dlq["max_receive_count"] < 5:
            problem(f"queue {q['name']}: maxReceiveCount must be at least 5")

tables = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
if len(tables) != 1:
    problem("the template must have exactly one table")
else:
    t = tables[0]["Properties"]
    local = stack["table"]
    keys = {k["KeyType"]: k["AttributeName"] for k in t["KeySchema"]}
    if keys.get("HASH") != local["partition_key"] or keys.get("RANGE") != local.get("sort_key"):
        problem(f"table keys {keys} differ from {local['partition_key']}/{local.get('sort_key')}")
    deployed_indexes = {i["IndexName"]: {k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]} for i in t.get("GlobalSecondaryIndexes", [])}
    local_indexes = {i["name"]: {"HASH": i["partition_key"], **({"RANGE": i["sort_key"]} if i.get("sort_key") else {})} for i in local.get("indexes", [])}
    if deployed_indexes != local_indexes:
        problem(f"indexes {deployed_indexes} differ from {local_indexes}")
    if t.get("TimeToLiveSpecification", {}).get("AttributeName") != local.get("ttl_attribute"):
        problem("TTL attribute differs")
    for flag, ok in [("PointInTimeRecovery", t.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")),
                     ("SSE", t.get("SSESpecification", {}).get("SSEEnabled")), ("DeletionProtection", t.get("DeletionProtectionEnabled")),
                     ("on-demand", t.get("BillingMode") == "PAY_PER_REQUEST")]:
        if not ok:
            problem(f"table: {flag} is not enabled")

for p in problems:
    print(p, file=sys.stderr)
checked = len(functions) + len(stack["queues"]) + 1
print(f"{checked - min(len(problems), checked)} passed, {len(problems)} failed")
sys.exit(1 if problems else 0)
