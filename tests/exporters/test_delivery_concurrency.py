"""Sixteen threads lose nothing and count exactly; a forked child has its own worker and empty queue."""

from __future__ import annotations

import contextlib
import json
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_telemetry_exporters._delivery import span_event_id

from exporters.tests.helpers.faults import FaultServer
from sdk_telemetry import configure_telemetry, instrument
from tests.helpers.processes import child_env, run_python


class Failure(Exception):
    pass


class Client:
    def call(self, n: int = 0) -> int:
        return n

    def fail(self) -> None:
        raise Failure("expected")


def test_sixteen_threads_making_calls_lose_nothing_and_count_exactly():
    threads, calls, every = 16, 250, 25
    with FaultServer() as server:
        telemetry = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=0.02)
        provider = trace.get_tracer_provider()
        assert isinstance(provider, TracerProvider)
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        instrument(Client)
        start = threading.Barrier(threads)

        def work() -> None:
            client = Client()
            start.wait()
            for n in range(calls):
                client.call(n)
                if n % every == 0:
                    with contextlib.suppress(Failure):
                        client.fail()

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert telemetry.flush(timeout=30)
        sent = {span_event_id(span) for span in memory.get_finished_spans()}
        total = threads * (calls + calls // every)
        assert len(sent) == total
        missing = server.wait_for_ids(sent, timeout=10)
        telemetry.shutdown(timeout=1)
    stats = telemetry.stats()
    entry = stats["exporters"]["composio"]
    exporter = entry["exporter"]
    assert not missing, f"{len(missing)} of {total} events lost"
    assert server.duplicates() == 0
    assert (entry["pushed"], entry["queued"], entry["exported"], entry["failed"]) == (total, total, total, 0), entry
    assert entry["dropped"] == {} and exporter["dropped"] == {}, entry
    assert exporter["invocations_sent"] == threads * calls
    assert exporter["errors_sent"] == threads * (calls // every)


FORKING = """
import json, os, sys, time
from sdk_telemetry import configure_telemetry, instrument

class Parent:
    def call(self, n):
        return n

class Child:
    def call(self, n):
        return n

telemetry = configure_telemetry(exporter="composio", endpoint={url!r}, batch_interval=30)
instrument(Parent)
instrument(Child)
for n in range(5):
    Parent().call(n)  # starts the worker; these stay queued (long interval)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    processor = telemetry.processors[0]
    before = processor.stats()
    for n in range(3):
        Child().call(n)
    flushed = telemetry.flush(timeout=10)
    after = processor.stats()
    alive = processor._worker is not None and processor._worker.is_alive()
    report = {{"before": before, "after": after, "flushed": flushed, "worker_alive": alive}}
    os.write(write, json.dumps(report).encode())
    os._exit(0)
os.close(write)
_, status = os.waitpid(pid, 0)
child = json.loads(os.read(read, 1 << 20))
telemetry.flush(timeout=10)
print(json.dumps({{"child": child, "parent": telemetry.processors[0].stats(), "status": status}}))
"""


def test_after_fork_the_child_has_its_own_worker_an_empty_queue_and_never_resends_the_parents_events():
    with FaultServer() as server:
        result = run_python(FORKING.format(url=server.url), env=child_env(), timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        received = [payload["functionName"] for request in server.received for payload in json.loads(request.body)]
    child, parent = report["child"], report["parent"]
    assert report["status"] == 0
    assert child["before"]["queue"] == 0 and child["before"]["queued"] == 0, child["before"]
    assert child["flushed"] is True and child["worker_alive"] is True
    assert (child["after"]["queued"], child["after"]["exported"]) == (3, 3), child["after"]
    assert (parent["queued"], parent["exported"]) == (5, 5), parent
    assert sorted(received) == ["Child.call"] * 3 + ["Parent.call"] * 5, received
    assert server.duplicates() == 0
