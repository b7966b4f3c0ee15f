"""moto_server, with four of moto's costs taken out: whole-table backups in transactions, long
polls that spin, the clock SQS reads for every message, and queries that sort the whole table.

moto (5.2.5, moto/dynamodb/models/__init__.py, transact_write_items) deep-copies every table a
transaction names before it starts, and puts those copies back when the transaction fails. That
costs time and memory in proportion to the table on every call (2,000 employees through the
chaos run took one moto process past 11 GB in 15 minutes), and a rollback puts back the whole
table as it was, so a write another request made meanwhile is lost: real DynamoDB does neither.
Here the copy is of the items the transaction names, and a failed transaction puts back only
those.

A long poll (ReceiveMessage with WaitTimeSeconds) on a FIFO queue whose visible messages all
belong to message groups in flight finds nothing to deliver, and moto's wait for "visible
messages" returns at once because there are some: the poll goes round again without pause until
its wait time is over, holding the interpreter (a 2,000-employee run kept moto's SQS at a full
core). Here such a poll waits up to 50 ms, or until a message arrives, before it looks again.

SQS decides whether each message is visible or delayed from a clock that builds two datetimes a
read, for every message of the queue at every receive and every count of messages: with
thousands queued that was two thirds of moto's time (py-spy). Here SQS reads `time.time()`, the
same instant in the same unit.

A Query (moto/dynamodb/models/table.py, Table.query) lists every item of the table, sorted,
and then keeps those of the partition asked for (or, on an index, those whose index keys
match), for every call: with 2,000 employees' records, history lines and claims, the chaos
run's DynamoDB moto spent half its time there (py-spy). Here a query on the table reads its
partition only, and one on an index reads every item once, unsorted (the query sorts what
matches, as before).

DynamoDB applies a conditional write atomically. moto's server answers each request on its own
thread and checks a condition, then writes, in separate steps, so two requests conditioned on the
same version could both pass (8 threads writing a version on condition: 72 wins for 68 versions;
the e2e test of the termination guard once admitted 30 leavers where the limit was 25, CI
2026-11-28). Here moto answers one DynamoDB request at a time; SQS, whose long polls wait, is not
held by it.

moto's SQS answers each request on its own thread too, and its queue is a plain list: a delete
builds the list again without the deleted message and puts it in place, so a message that
another request appended meanwhile is lost, and of two deletes at once one message comes back
(10,000 leavers, 2026-11-28: two HR events gone from the queue without a trace, 18 deleted
termination requests back in flight). Here SQS answers one request at a time too, except while
a long poll waits for messages.

moto writes a stream record for each write of a transaction as it makes it, so a transaction
that fails part-way leaves records of writes that never happened (and its rollback adds more):
the lifecycle events would announce changes that were undone. Here a failed transaction takes
its stream records back, and a stream read waits for the DynamoDB request under way (it never
sees them before). EventBridge's PutEvents appends to its target queues under the SQS lock, as
a SendMessage does.

Everything else is moto's. Run as `python moto_server.py -H 127.0.0.1 -p PORT`.
"""

import copy
import sys
import threading
import time

import moto.sqs.models as sqs_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.events.responses import EventsHandler
from moto.server import main
from moto.sqs.models import Queue
from moto.sqs.responses import SQSResponse

_in_transaction = threading.local()
_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _table_deepcopy(self, memo):
    # Inside a transaction: no whole-table backup (the items it names are backed up instead).
    if getattr(_in_transaction, "on", False):
        return self
    cls = self.__class__
    copied = cls.__new__(cls)
    memo[id(self)] = copied
    for name, value in self.__dict__.items():
        setattr(copied, name, copy.deepcopy(value, memo))
    return copied


def _named_items(backend, transact_items):
    """(table, hash key, range key, copy of the item or None) for each item the transaction names."""
    named = []
    for entry in transact_items:
        if len(entry) != 1:
            continue  # moto refuses it before writing anything
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        source = op.get("Key") or op.get("Item") or {}
        keys = {table.hash_key_attr: source.get(table.hash_key_attr)}
        if table.range_key_attr is not None:
            keys[table.range_key_attr] = source.get(table.range_key_attr)
        if any(value is None for value in keys.values()):
            continue  # moto refuses a key it cannot read
        hash_key, range_key = backend.get_keys_value(table, keys)
        named.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return named


def _put_back(table, hash_key, range_key, item):
    if item is None:
        table.delete_item(hash_key, range_key)
    elif range_key is not None:
        table.items[hash_key][range_key] = item
    else:
        table.items[hash_key] = item


def transact_write_items(self, transact_items):
    named = _named_items(self, transact_items)
    streamed = {id(table): (table.stream_shard, len(table.stream_shard.items))
                for table, *_ in named if table.stream_shard is not None}
    _in_transaction.on = True
    try:
        return _moto_transact_write_items(self, transact_items)
    except Exception:
        # All or nothing: the items it may have written are as they were, and so is the stream
        # (moto records each write of a transaction as it goes, even one that then fails).
        for table, hash_key, range_key, item in named:
            _put_back(table, hash_key, range_key, item)
        for shard, length in streamed.values():
            del shard.items[length:]
        raise
    finally:
        _in_transaction.on = False


_sqs_requests = threading.RLock()
_moto_sqs_call_action = SQSResponse.call_action


_in_sqs_request = threading.local()


def sqs_call_action(self):
    # One SQS request at a time: a delete, a send and a receive never see the queue half-changed.
    with _sqs_requests:
        _in_sqs_request.on = True
        try:
            return _moto_sqs_call_action(self)
        finally:
            _in_sqs_request.on = False


def wait_for_messages(self, timeout):
    # A long poll lets the other requests in while it waits (a send is what it waits for).
    held = getattr(_in_sqs_request, "on", False)
    if held:
        _sqs_requests.release()
    try:
        with self._messages_lock:
            if self.messages:
                # Visible but none deliverable (their groups are in flight): pause, don't spin.
                self._messages_lock.wait(timeout=min(timeout, 0.05))
            else:
                self._messages_lock.wait_for(lambda: self.messages, timeout=timeout)
    finally:
        if held:
            _sqs_requests.acquire()


_moto_unix_time = sqs_models.unix_time
_moto_unix_time_millis = sqs_models.unix_time_millis


def unix_time(dt=None):
    return time.time() if dt is None else _moto_unix_time(dt)


def unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _moto_unix_time_millis(dt)


_query_scope = threading.local()
_moto_all_items = Table.all_items
_moto_query = Table.query


def all_items(self):
    if getattr(_query_scope, "table", None) is not self:
        return _moto_all_items(self)
    with_range = self.range_key_attr is not None
    if _query_scope.index:
        # An index query: every item once; the query keeps and sorts the ones it matches.
        return [item for held in list(self.items.values()) for item in (list(held.values()) if with_range else [held])]
    held = self.items.get(_query_scope.hash_key)
    if held is None:
        return []
    return list(held.values()) if with_range else [held]


def query(self, hash_key, *args, **kwargs):
    # moto's positional order: range_comparison, range_objs, limit, exclusive_start_key,
    # scan_index_forward, projection_expressions, index_name, ...
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    _query_scope.table, _query_scope.hash_key, _query_scope.index = self, hash_key, bool(index_name)
    try:
        return _moto_query(self, hash_key, *args, **kwargs)
    finally:
        _query_scope.table = None


_dynamodb_requests = threading.Lock()
_moto_call_action = DynamoHandler.call_action
_moto_streams_call_action = DynamoDBStreamsHandler.call_action
_moto_events_call_action = EventsHandler.call_action


def call_action(self):
    # One DynamoDB request at a time: a condition and the write it guards are then atomic.
    with _dynamodb_requests:
        return _moto_call_action(self)


def streams_call_action(self):
    # A stream read waits for the write under way: it never sees a failed transaction's records
    # before they are taken back.
    with _dynamodb_requests:
        return _moto_streams_call_action(self)


def events_call_action(self):
    # PutEvents appends to a target queue: under the SQS lock, as a SendMessage would be.
    with _sqs_requests:
        return _moto_events_call_action(self)


DynamoHandler.call_action = call_action
DynamoDBStreamsHandler.call_action = streams_call_action
EventsHandler.call_action = events_call_action
SQSResponse.call_action = sqs_call_action
Table.__deepcopy__ = _table_deepcopy
Table.all_items = all_items
Table.query = query
DynamoDBBackend.transact_write_items = transact_write_items
Queue.wait_for_messages = wait_for_messages
sqs_models.unix_time = unix_time
sqs_models.unix_time_millis = unix_time_millis

if __name__ == "__main__":
    sys.exit(main())
