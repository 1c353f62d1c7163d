"""The deployment artefacts in ``conf/deploy``, checked as far as can be without a container engine or a cluster.

The files parse; the probes name paths the service serves; ports and timeouts
agree with the settings' defaults and with the config they ship; the grace
periods outlast the drain; the container recipe installs the package the way
the README does. (HAProxy's file is run for real by ``tests/replicas``.)
"""

from __future__ import annotations

import ast
import configparser
import functools
import json
import os
import re
import shlex

import pytest
import yaml
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from tests.support.service import ROOT
from tornado_ingest.app import make_app
from tornado_ingest.config import parse_config
from tornado_ingest.handlers import NotFoundHandler
from tornado_ingest.settings import ServerSettings

DEPLOY = os.path.join(ROOT, "conf", "deploy")
DEFAULTS = ServerSettings()
#: the longest a sink may take to flush at close with its default timeouts (Kafka send_timeout, RabbitMQ
#: confirm_timeout): a stop must leave room for it after the drain
SINK_FLUSH = 10


def read(*path):
    with open(os.path.join(DEPLOY, *path), encoding="utf-8") as stream:
        return stream.read()


@functools.lru_cache(maxsize=1)
def an_app():
    return make_app(parse_config({"sinks": {"m": {"type": "memory"}}, "datasets": {"d": {"sink": "m"}}}))


def served(path):
    """Whether the service has a route (other than "not found") for ``GET path``."""
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", path, "HTTP/1.1"), headers=HTTPHeaders({"Host": "probe"})
    )
    return an_app().find_handler(request).handler_class is not NotFoundHandler


def test_served_knows_a_probe_from_a_typo():
    assert served("/ready") and served("/health") and not served("/healthz")


# -- the container recipe -----------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile():
    """Instruction -> the arguments of each of its lines (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", read("container", "Dockerfile"))
    instructions = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, arguments = line.strip().partition(" ")
            instructions.setdefault(instruction.upper(), []).append(arguments.strip())
    return instructions


def test_the_image_runs_as_a_user_and_the_service_gets_the_signals(dockerfile):
    (user,) = dockerfile["USER"]
    assert user.split(":")[0] not in ("root", "0")
    (entrypoint,) = dockerfile["ENTRYPOINT"]
    assert json.loads(entrypoint) == ["tornado-ingest"], "exec form: the service is PID 1 and gets SIGTERM itself"
    assert dockerfile["STOPSIGNAL"] == ["SIGTERM"]
    assert json.loads(dockerfile["CMD"][0]) == [], "no arguments: the embedded default"


def test_the_image_installs_the_package_as_the_readme_says(dockerfile):
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert "pip install '.[kafka]'" in readme and "pip install ." in readme
    installs = [shlex.split(line) for line in dockerfile["RUN"] if "pip install" in line]
    assert len(installs) == 1
    target = next(word for word in installs[0][installs[0].index("install") + 1 :] if not word.startswith("-"))
    match = re.fullmatch(r"\.\[([a-z,]+)\]", target)
    assert match, "install the checkout with its extras, as the README does: %r" % target
    assert set(match.group(1).split(",")) <= set(setup_extras()), "an extra setup.py does not declare"
    copied = " ".join(dockerfile["COPY"])
    for needed in ("setup.py", "README.md", "tornado_ingest", "sinks"):
        assert needed in copied


def setup_extras():
    tree = ast.parse(open(os.path.join(ROOT, "setup.py"), encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extras_require":
            return [key.value for key in node.value.keys]
    raise AssertionError("setup.py has no extras_require")


def test_the_image_listens_and_is_checked_where_the_service_does(dockerfile):
    assert dockerfile["EXPOSE"] == [str(DEFAULTS.port)]
    (healthcheck,) = dockerfile["HEALTHCHECK"]
    path = re.search(r"http://127\.0\.0\.1:%s(/\w+)", healthcheck).group(1)
    assert served(path) and "'3000'" in healthcheck


# -- Kubernetes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests():
    """kind -> the manifest, every file of the kustomization parsed."""
    kustomization = yaml.safe_load(read("kubernetes", "kustomization.yaml"))
    found = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all(read("kubernetes", name)):
            assert {"apiVersion", "kind", "metadata"} <= set(document), name
            found[document["kind"]] = document
    listed = sorted(name for name in os.listdir(os.path.join(DEPLOY, "kubernetes")) if name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == listed
    return found


def container_of(manifests):
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def shipped_config(manifests, monkeypatch):
    """The ConfigMap's config, loaded as the service would, with only the Secret's values in the environment."""
    for name in list(os.environ):
        if name.endswith(("_URL", "_SERVERS", "_KEY")):
            monkeypatch.delenv(name)
    for name, value in manifests["Secret"]["stringData"].items():
        monkeypatch.setenv(name, value)
    from tornado_ingest.config import load_yaml

    return parse_config(load_yaml(manifests["ConfigMap"]["data"]["config.yaml"]), source="configmap")


def test_the_shipped_config_is_valid_and_its_secrets_come_from_the_secret(manifests, monkeypatch):
    config = shipped_config(manifests, monkeypatch)
    assert config.server.port == DEFAULTS.port
    assert config.keys.enabled
    container = container_of(manifests)
    assert container["envFrom"] == [{"secretRef": {"name": manifests["Secret"]["metadata"]["name"]}}]
    volumes = {v["name"]: v for v in manifests["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert volumes["config"]["configMap"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
    assert container["args"] == ["--config", mounts["config"] + "/config.yaml"]


def test_the_probes_name_paths_the_service_serves_on_its_port(manifests):
    container = container_of(manifests)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert served(container[probe]["httpGet"]["path"])
        assert ports[container[probe]["httpGet"]["port"]] == DEFAULTS.port
    assert manifests["Service"]["spec"]["ports"][0]["targetPort"] in ports


def test_a_stopping_pod_has_time_to_drain(manifests, monkeypatch):
    server = shipped_config(manifests, monkeypatch).server
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    pre_stop = container_of(manifests)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = float(pre_stop[1]) + server.shutdown_delay + server.drain_timeout + SINK_FLUSH
    assert pod["terminationGracePeriodSeconds"] > needed
    assert server.drain_timeout == DEFAULTS.drain_timeout


def test_the_pods_run_as_the_images_user_and_are_kept_available(manifests, dockerfile):
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert str(pod["securityContext"]["runAsUser"]) == dockerfile["USER"][0].split(":")[0]
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget", "Deployment"):
        assert manifests[kind]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifests["Service"]["spec"]["selector"].items() <= labels.items()
    assert manifests["PodDisruptionBudget"]["spec"]["maxUnavailable"] < manifests["Deployment"]["spec"]["replicas"]
    autoscaler = manifests["HorizontalPodAutoscaler"]["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    assert autoscaler["minReplicas"] >= manifests["Deployment"]["spec"]["replicas"]
    assert [metric["resource"]["name"] for metric in autoscaler["metrics"]] == ["cpu"]


# -- systemd --------------------------------------------------------------------------


def test_the_systemd_unit_reloads_with_sighup_and_outwaits_the_drain():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(read("systemd", "tornado-ingest.service"))
    service = unit["Service"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert float(service["TimeoutStopSec"]) > DEFAULTS.shutdown_delay + DEFAULTS.drain_timeout + SINK_FLUSH
    command = shlex.split(service["ExecStart"])
    assert command[0].endswith("/tornado-ingest") and command[1] == "--config"
    assert shlex.split(service["ExecStartPre"])[1:] == ["check-config", command[2]]
    assert service["User"] != "root"


# -- HAProxy ----------------------------------------------------------------------------


def test_haproxy_checks_ready_and_waits_longer_than_the_service():
    text = read("haproxy", "haproxy.cfg")
    path = re.search(r"http-check send meth GET uri (\S+)", text).group(1)
    assert path == "/ready" and served(path)
    timeouts = dict(re.findall(r"^\s*timeout ([\w-]+) (\d+)s\s*$", text, re.MULTILINE))
    assert float(timeouts["client"]) > DEFAULTS.idle_timeout  # the service closes idle connections first
    assert float(timeouts["server"]) > SINK_FLUSH  # an answer held up to a sink's timeout still arrives
