"""What generated clusters are made of: OpenShift 3.11's own namespaces and workloads, an app
catalogue, and the words project, team and service names are drawn from."""

from __future__ import annotations

EPOCH = 1551665592  # 2019-03-04T02:13:12Z, when the cluster was installed

# (name, netid 0?) — OpenShift 3.11's own namespaces, the global ones as an admin makes them.
SYSTEM_NAMESPACES = (
    ("default", True), ("openshift-monitoring", True), ("kube-system", False),
    ("openshift-infra", True), ("openshift-sdn", False), ("openshift-node", False),
    ("openshift-console", False), ("openshift-web-console", False), ("kube-public", False),
    ("openshift", False), ("openshift-logging", True), ("kube-service-catalog", False),
    ("openshift-template-service-broker", False), ("management-infra", False),
)
# App catalogue: (app, tier, image, [(port name, containerPort, protocol, service port)]).
Port = tuple[str, int, str, int]
App = tuple[str, str, str, list[Port]]
SYSTEM_APPS: dict[str, list[App]] = {
    "default": [("docker-registry", "infra", "openshift3/ose-docker-registry:v3.11",
                 [("5000-tcp", 5000, "TCP", 5000)]),
                ("registry-console", "infra", "openshift3/registry-console:v3.11",
                 [("registry-console", 9090, "TCP", 9000)])],
    "openshift-monitoring": [
        ("prometheus-k8s", "monitoring", "openshift3/prometheus:v3.11",
         [("web", 9091, "TCP", 9091)]),
        ("alertmanager-main", "monitoring", "openshift3/prometheus-alertmanager:v3.11",
         [("web", 9094, "TCP", 9094)]),
        ("grafana", "monitoring", "openshift3/grafana:v3.11", [("https", 3000, "TCP", 3000)])],
    "openshift-console": [("console", "frontend", "openshift3/ose-console:v3.11",
                           [("https", 8443, "TCP", 443)])],
    "openshift-web-console": [("webconsole", "frontend", "openshift3/ose-web-console:v3.11",
                               [("https", 8443, "TCP", 443)])],
    "openshift-logging": [
        ("logging-kibana", "logging", "openshift3/logging-kibana5:v3.11",
         [("kibana", 5601, "TCP", 443)]),
        ("logging-es", "logging", "openshift3/logging-elasticsearch5:v3.11",
         [("restapi", 9200, "TCP", 9200), ("cluster", 9300, "TCP", 9300)])],
    "kube-service-catalog": [("apiserver", "infra", "openshift3/ose-service-catalog:v3.11",
                              [("secure", 6443, "TCP", 443)])],
}
APPS: list[App] = [
    ("web", "frontend", "nginx:1.15", [("http", 8080, "TCP", 80)]),
    ("frontend", "frontend", "node:10", [("http", 8080, "TCP", 8080),
                                         ("https", 8443, "TCP", 8443)]),
    ("api", "backend", "openjdk:8", [("http", 8080, "TCP", 8080), ("grpc", 9090, "TCP", 9090)]),
    ("orders", "backend", "golang:1.11", [("http", 8080, "TCP", 8080)]),
    ("auth", "backend", "keycloak:4.5", [("http", 8080, "TCP", 8080),
                                         ("https", 8443, "TCP", 8443)]),
    ("postgres", "db", "postgresql:10", [("postgresql", 5432, "TCP", 5432)]),
    ("mysql", "db", "mysql:5.7", [("mysql", 3306, "TCP", 3306)]),
    ("mongodb", "db", "mongodb:3.6", [("mongodb", 27017, "TCP", 27017)]),
    ("redis", "cache", "redis:5", [("redis", 6379, "TCP", 6379)]),
    ("memcached", "cache", "memcached:1.5", [("memcache", 11211, "TCP", 11211),
                                             ("memcache-udp", 11211, "UDP", 11211)]),
    ("kafka", "queue", "strimzi/kafka:0.8", [("clients", 9092, "TCP", 9092),
                                             ("replication", 9091, "TCP", 9091)]),
    ("zookeeper", "queue", "zookeeper:3.4", [("client", 2181, "TCP", 2181),
                                             ("peer", 2888, "TCP", 2888),
                                             ("election", 3888, "TCP", 3888)]),
    ("rabbitmq", "queue", "rabbitmq:3.7", [("amqp", 5672, "TCP", 5672),
                                           ("management", 15672, "TCP", 15672)]),
    ("worker", "worker", "python:3.6", [("metrics", 9100, "TCP", 9100)]),
    ("statsd", "monitoring", "statsd:0.8", [("statsd", 8125, "UDP", 8125),
                                            ("admin", 8126, "TCP", 8126)]),
    ("dns", "infra", "coredns:1.2", [("dns", 5353, "UDP", 53), ("dns-tcp", 5353, "TCP", 53),
                                     ("metrics", 9153, "TCP", 9153)]),
    ("syslog", "infra", "rsyslog:8", [("syslog", 514, "UDP", 514)]),
    ("elasticsearch", "db", "elasticsearch:6.4", [("http", 9200, "TCP", 9200),
                                                  ("transport", 9300, "TCP", 9300)]),
    ("jenkins", "ci", "openshift3/jenkins-2-rhel7:v3.11", [("web", 8080, "TCP", 80),
                                                           ("jnlp", 50000, "TCP", 50000)]),
    ("reports", "analytics", "quay.io/example/reports:3.0.0", [("http", 8080, "TCP", 8080),
                                                               ("statsd", 8125, "UDP", 8125)]),
]
PROJECT_WORDS = ("payments", "billing", "shop", "catalog", "checkout", "search", "inventory",
                  "shipping", "accounts", "identity", "media", "reporting", "analytics", "crm",
                  "ledger", "pricing", "booking", "loyalty", "claims", "portal", "gateway",
                  "notify", "content", "insight", "fraud", "risk", "orders", "quotes", "hr",
                  "payroll", "support", "docs", "wiki", "data", "ml", "etl", "iot", "fleet",
                  "maps", "video")
PROJECT_PARTS = ("api", "web", "backend", "services", "platform", "core", "app", "team",
                  "batch", "stream")
ENVS = ("dev", "test", "stage", "prod")
TEAMS = ("frontend", "backend", "data", "platform", "payments", "mobile", "ops", "security")
WORDS = ("alpha", "blue", "green", "red", "v2", "admin", "internal", "public", "batch", "edge")
SERVICE_SUFFIXES = ("metrics", "internal", "headless", "v2", "admin", "peer")
# First octets of public networks, for egress firewall rules.
EXTERNAL_NETS = (8, 13, 23, 34, 52, 104, 151, 185, 198)
