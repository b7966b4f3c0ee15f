"""infra/local/moto_server.py keeps DynamoDB's transactions all or nothing, without moto's
whole-table backup: a failed transaction leaves the items it named as they were (and nothing on
the table's stream), a write made beside it stays, and a transaction's time does not grow with
the table. Conditional writes
from many threads at once are atomic, as DynamoDB's are. A long poll on a FIFO
queue whose messages are all held by their group waits instead of spinning, and still gets a
message that arrives meanwhile. Sends, receives and deletes at once lose no message and bring
none back. Prints the figures.

Run: .venv/bin/python infra/local/test_moto_server.py (make test-conformance).
"""

import os
import socket
import subprocess
import sys
import threading
import time

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(launcher_args):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, *launcher_args, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return process, client, port


def key(pk):
    return {"pk": {"S": pk}, "sk": {"S": "STATE"}}


def get(client, pk):
    return client.get_item(TableName="t", Key=key(pk), ConsistentRead=True).get("Item")


def transaction_ms(client, n):
    """The mean time of n transactions of two writes each, in ms."""
    started = time.perf_counter()
    for i in range(n):
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {**key(f"T{i}"), "v": {"N": "1"}}}},
                {"Put": {"TableName": "t", "Item": {**key(f"U{i}"), "v": {"N": "1"}}}},
            ]
        )
    return (time.perf_counter() - started) * 1000 / n


def fill(client, n):
    for start in range(0, n, 25):
        requests = [
            {"PutRequest": {"Item": {**key(f"F{i}"), "payload": {"S": "x" * 200}}}} for i in range(start, min(n, start + 25))
        ]
        client.batch_write_item(RequestItems={"t": requests})


def cpu_seconds(pid):
    """User and system CPU time of a process, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def long_polls(process, port, failures):
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"})["QueueUrl"]
    for i in range(200):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"m{i}")
    # GIVEN the group's first message in flight: the other 199 are visible but held back
    if len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])) != 1:
        failures.append("the first message was not received")
    # WHEN a consumer long-polls for 2 s
    before = cpu_seconds(process.pid)
    started = time.perf_counter()
    held = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
    waited, spent = time.perf_counter() - started, cpu_seconds(process.pid) - before
    print(f"moto_server.py: a 2 s long poll on a held FIFO group: {waited:.2f} s waited, {spent:.2f} s of CPU")
    # THEN it gets nothing, having waited without spinning
    if held:
        failures.append("a message of a group in flight was delivered")
    if spent > 0.5:
        failures.append(f"the long poll spun: {spent:.2f} s of CPU in {waited:.2f} s")
    # AND a message of another group that arrives during a poll is delivered
    sqs.send_message(QueueUrl=url, MessageBody="other", MessageGroupId="h", MessageDeduplicationId="other")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
    if [m["Body"] for m in got] != ["other"]:
        failures.append(f"another group's message not delivered: {got}")


def sqs_under_concurrency(port, failures, messages=1000, consumers=3, backlog=1000):
    """Sends, receives and deletes at once on one queue, as the local stack makes them: every
    message sent is received, and once each is deleted the queue is empty (moto alone loses a
    message appended while a delete rebuilds the queue, and brings back one of two deleted at
    once)."""
    def client():
        return boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    url = client().create_queue(QueueName="busy", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    received, lock, sending = set(), threading.Lock(), threading.Event()
    sending.set()

    def send(first, last):
        sqs = client()
        for start in range(first, last, 10):
            entries = [{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)

    def consume():
        sqs = client()
        idle = 0
        while sending.is_set() or idle < 3:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            idle = 0 if got else idle + 1
            if not got:
                continue
            with lock:
                received.update(m["Body"] for m in got)
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    # A backlog makes each delete's pass over the queue long, as thousands of queued requests do.
    send(0, backlog)
    started = time.perf_counter()
    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads:
        t.start()
    send(backlog, backlog + messages)
    sending.clear()
    for t in threads:
        t.join()
    messages += backlog
    left = client().get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    in_flight = int(left["ApproximateNumberOfMessagesNotVisible"])
    print(f"moto_server.py: {messages} messages sent, received and deleted by {consumers} consumers at once in "
          f"{time.perf_counter() - started:.1f} s: {messages - len(received)} lost, {in_flight} deleted ones back")
    if len(received) != messages:
        failures.append(f"{messages - len(received)} of {messages} messages sent were never received")
    if in_flight or int(left["ApproximateNumberOfMessages"]):
        failures.append(f"the queue is not empty once every message is deleted: {left}")


def queries(client, failures):
    """A query on the table and one on an index give what DynamoDB gives (the partition, in
    range key order, either way, in pages), and their time does not grow with the table."""
    client.create_table(
        TableName="q",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "shard", "due")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-due",
                "KeySchema": [{"AttributeName": "shard", "KeyType": "HASH"}, {"AttributeName": "due", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )

    def put_partitions(first, last):
        items = []
        for p in range(first, last):
            for k in range(5):
                item = {"pk": {"S": f"P{p:05}"}, "sk": {"S": f"S{k}"}}
                if k == 0:
                    item.update({"shard": {"S": f"s{p % 4}"}, "due": {"S": f"{(p * 7) % 1000:04}"}})
                items.append({"PutRequest": {"Item": item}})
        for start in range(0, len(items), 25):
            client.batch_write_item(RequestItems={"q": items[start:start + 25]})

    def sks(**query):
        pages, out, start = 0, [], None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            page = client.query(TableName="q", **query, **extra)
            out += [(i["pk"]["S"], i["sk"]["S"]) for i in page["Items"]]
            pages += 1
            start = page.get("LastEvaluatedKey")
            if not start:
                return out, pages

    put_partitions(0, 40)
    own = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P00007"}}}
    got, _ = sks(**own)
    if got != [("P00007", f"S{k}") for k in range(5)]:
        failures.append(f"a partition's query: {got}")
    got, pages = sks(**own, ScanIndexForward=False, Limit=2)
    if got != [("P00007", f"S{k}") for k in reversed(range(5))] or pages != 3:
        failures.append(f"a partition backwards in pages of 2: {got} in {pages} pages")
    got, _ = sks(
        KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
        ExpressionAttributeValues={":p": {"S": "P00007"}, ":a": {"S": "S1"}, ":b": {"S": "S3"}},
    )
    if got != [("P00007", f"S{k}") for k in (1, 2, 3)]:
        failures.append(f"a range of a partition: {got}")
    got, _ = sks(**{**own, "ExpressionAttributeValues": {":p": {"S": "P99999"}}})
    if got:
        failures.append(f"a partition that is not there: {got}")
    by_due = {
        "IndexName": "by-due",
        "KeyConditionExpression": "shard = :s AND due <= :d",
        "ExpressionAttributeValues": {":s": {"S": "s1"}, ":d": {"S": "0100"}},
    }
    expected = sorted(
        ((f"{(p * 7) % 1000:04}", f"P{p:05}") for p in range(40) if p % 4 == 1 and (p * 7) % 1000 <= 100)
    )
    got, pages = sks(**by_due, Limit=3)
    if got != [(pk, "S0") for _, pk in expected]:
        failures.append(f"an index query in pages of 3: {got}, expected {expected}")

    def query_ms(n=50):
        started = time.perf_counter()
        for _ in range(n):
            client.query(TableName="q", **own)
        return (time.perf_counter() - started) * 1000 / n

    small = query_ms()
    put_partitions(40, 4_000)
    large = query_ms()
    print(f"moto_server.py: Query of a partition {small:.1f} ms with 200 items, {large:.1f} ms with 20,000")
    if large > 5 * small + 20:
        failures.append(f"a query's time grows with the table: {small:.1f} ms, then {large:.1f} ms")


def conditional_writes(port, failures, threads=8, rounds=40):
    """Writers that each read a version and write the next one on condition that it is still the
    one they read: as in DynamoDB, each version is won once, so the wins add up to the version
    (the termination guard relies on it)."""
    def client():
        return boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    main_client = client()
    main_client.put_item(TableName="t", Item={**key("V"), "version": {"N": "0"}, "wins": {"N": "0"}})
    won = [0] * threads

    def writer(i):
        c = client()
        for _ in range(rounds):
            read = c.get_item(TableName="t", Key=key("V"), ConsistentRead=True)["Item"]["version"]["N"]
            try:
                c.update_item(
                    TableName="t", Key=key("V"),
                    UpdateExpression="SET version = :next ADD wins :one",
                    ConditionExpression="version = :read",
                    ExpressionAttributeValues={":read": {"N": read}, ":next": {"N": str(int(read) + 1)},
                                               ":one": {"N": "1"}},
                )
                won[i] += 1
            except ClientError as e:
                if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    item = get(main_client, "V")
    version, wins = int(item["version"]["N"]), int(item["wins"]["N"])
    print(f"moto_server.py: {threads} writers, {sum(won)} conditional writes won, version {version}")
    if not sum(won) == wins == version:
        failures.append(f"a version won twice: {sum(won)} wins reported, {wins} counted, version {version}")


def streams(port, failures):
    """A cancelled transaction leaves nothing on the table's stream; the writes around it do."""
    endpoint = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                    aws_access_key_id="test", aws_secret_access_key="test")
    client = boto3.client("dynamodb", **endpoint)
    client.create_table(
        TableName="streamed",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.put_item(TableName="streamed", Item={**key("X"), "v": {"N": "1"}})
    try:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": "streamed", "Item": {**key("Y"), "v": {"N": "1"}}}},
            {"ConditionCheck": {"TableName": "streamed", "Key": key("X"), "ConditionExpression": "v = :two",
                                "ExpressionAttributeValues": {":two": {"N": "2"}}}},
        ])
        failures.append("streams: the transaction should have been cancelled")
    except ClientError:
        pass
    client.put_item(TableName="streamed", Item={**key("Z"), "v": {"N": "1"}})
    arn = client.describe_table(TableName="streamed")["Table"]["LatestStreamArn"]
    streams_client = boto3.client("dynamodbstreams", **endpoint)
    shard = streams_client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams_client.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams_client.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    written = [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records]
    if written != [("INSERT", "X"), ("INSERT", "Z")]:
        failures.append(f"streams: a cancelled transaction left records on the stream: {written}")


def main():
    failures = []
    process, client, port = start([os.path.join(HERE, "moto_server.py")])
    try:
        # GIVEN A, and a transaction that writes B and C but whose check on A fails
        client.put_item(TableName="t", Item={**key("A"), "v": {"N": "1"}})
        try:
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {**key("B"), "v": {"N": "1"}}}},
                    {"Update": {"TableName": "t", "Key": key("C"), "UpdateExpression": "SET v = :v",
                                "ExpressionAttributeValues": {":v": {"N": "2"}}}},
                    {"ConditionCheck": {"TableName": "t", "Key": key("A"), "ConditionExpression": "v = :two",
                                        "ExpressionAttributeValues": {":two": {"N": "2"}}}},
                ]
            )
            failures.append("the transaction should have been cancelled")
        except ClientError as e:
            if e.response["Error"]["Code"] != "TransactionCanceledException":
                failures.append(f"cancelled with {e.response['Error']['Code']}")
        # THEN nothing it named was written, and A is as it was
        if get(client, "B") is not None or get(client, "C") is not None:
            failures.append("a cancelled transaction left a write behind")
        if get(client, "A") != {**key("A"), "v": {"N": "1"}}:
            failures.append(f"A changed: {get(client, 'A')}")
        # AND a transaction that succeeds writes all its items
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {**key("D"), "v": {"N": "1"}}}},
                {"Delete": {"TableName": "t", "Key": key("A")}},
            ]
        )
        if get(client, "D") is None or get(client, "A") is not None:
            failures.append("a committed transaction did not write all its items")
        # AND an item that was there before a cancelled Delete stays
        client.put_item(TableName="t", Item={**key("E"), "v": {"N": "1"}})
        try:
            client.transact_write_items(
                TransactItems=[
                    {"Delete": {"TableName": "t", "Key": key("E")}},
                    {"Put": {"TableName": "t", "Item": {**key("D"), "v": {"N": "9"}},
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                ]
            )
            failures.append("the second transaction should have been cancelled")
        except ClientError:
            pass
        if get(client, "E") is None or get(client, "D")["v"] != {"N": "1"}:
            failures.append("a cancelled Delete removed its item, or a refused Put wrote")

        # The cost of a transaction with 200 items in the table, then 20,000.
        small = transaction_ms(client, 50)
        fill(client, 20_000)
        large = transaction_ms(client, 50)
        print(f"moto_server.py: TransactWriteItems {small:.1f} ms with 200 items, {large:.1f} ms with 20,000")
        if large > 5 * small + 20:
            failures.append(f"a transaction's time grows with the table: {small:.1f} ms, then {large:.1f} ms")
        queries(client, failures)
        streams(port, failures)
        conditional_writes(port, failures)
        long_polls(process, port, failures)
        sqs_under_concurrency(port, failures)
    finally:
        process.kill()

    if failures:
        for failure in failures:
            print(f"FAIL: {failure}")
        sys.exit(1)
    print("moto_server.py: transactions all or nothing, their time independent of the table; queries too; "
          "conditional writes atomic; long polls wait; SQS loses nothing under concurrent calls")


if __name__ == "__main__":
    main()
