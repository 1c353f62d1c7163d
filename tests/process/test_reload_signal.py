"""A real SIGHUP to a running service under load: a dataset added with no failed request; a broken file refused."""

from __future__ import annotations

import http.client
import json
import signal
import threading

from tests.support.data_in import ingest_request

SINKS = "sinks: {local: {type: file, directory: %s}}\n"
BEFORE = SINKS + "datasets: {example: {sink: local, entry_topic: example}}\n"
AFTER = SINKS + "datasets: {example: {sink: local, entry_topic: example}, added: {sink: local, entry_topic: added}}\n"


def load(port, stop, statuses):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = 0
    while not stop.is_set():
        sent += 1
        body = json.dumps(ingest_request(msgid="load-%d-%d" % (threading.get_ident(), sent)))
        connection.request("POST", "/v2/data/in/example", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
    connection.close()


def test_sighup_under_load_adds_a_dataset_and_a_broken_file_is_refused(service_factory, tmp_path):
    directory = tmp_path / "data"
    service = service_factory("--port", "0", "--address", "127.0.0.1", "--processes", "2", config=BEFORE % directory)
    config_file = tmp_path / "config-0.yaml"
    for _ in range(2):
        service.wait_for("sink 'local' started")
    stop, statuses = threading.Event(), []
    clients = [threading.Thread(target=load, args=(service.port, stop, statuses)) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        assert service.post("/v2/data/in/added", ingest_request())[0] == 404
        config_file.write_text(AFTER % directory)
        service.process.send_signal(signal.SIGHUP)
        for _ in range(2):  # both workers
            service.wait_for("config reloaded from .*: 2 datasets")
        for i in range(10):  # whichever worker answers
            assert service.post("/v2/data/in/added", ingest_request(msgid="added-%d" % i))[0] == 200

        config_file.write_text("datasets: {broken: {sink: nowhere, entry_topic: x}}\nsinks: {local: {type: file}}\n")
        service.process.send_signal(signal.SIGHUP)
        for _ in range(2):
            service.wait_for("config reload refused, the config in force stays: sinks.local.directory: is required")
        assert service.post("/v2/data/in/added", ingest_request())[0] == 200
    finally:
        stop.set()
        for client in clients:
            client.join(15)
    assert statuses and set(statuses) == {200}, "%d of %d requests failed" % (
        len(statuses) - statuses.count(200),
        len(statuses),
    )
    assert service.stop() == 0
    assert len((directory / "added.jsonl").read_text().splitlines()) == 11
