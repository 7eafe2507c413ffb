"""The API server over HTTP: list and watch of the kinds the node reads, as plain dicts.

The official `kubernetes` package does what is easy to get wrong: kubeconfig and in-cluster
service-account loading (with token refresh), TLS, proxies, and a urllib3 connection pool.
We take only that: requests go through `ApiClient.call_api`, whose response is urllib3's,
unread; we decode the JSON ourselves and never build the package's model objects (tens of
thousands of pods as generated classes would cost more memory than the whole topology).  In
`osken-manager`, eventlet has patched sockets, so a watch blocked on its stream is a green
thread waiting, not a blocked controller.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3

from topology.errors import OsdnError

__all__ = ["KINDS", "ApiError", "Gone", "KindInfo", "KubeClient", "KubeConfigError"]


@dataclass(frozen=True)
class KindInfo:
    kind: str
    api_version: str  # "v1", "network.openshift.io/v1"
    plural: str  # the resource's path segment

    @property
    def group(self) -> str:
        """The API group ("" for the core group): what RBAC rules name (deploy/)."""
        return self.api_version.rpartition("/")[0]

    @property
    def base(self) -> str:
        """The path before the resource: /api/v1 or /apis/<group>/<version>."""
        return f"/api/{self.api_version}" if "/" not in self.api_version \
            else f"/apis/{self.api_version}"


_NETWORK = "network.openshift.io/v1"
KINDS: dict[str, KindInfo] = {info.kind: info for info in (
    KindInfo("ClusterNetwork", _NETWORK, "clusternetworks"),
    KindInfo("HostSubnet", _NETWORK, "hostsubnets"),
    KindInfo("NetNamespace", _NETWORK, "netnamespaces"),
    KindInfo("EgressNetworkPolicy", _NETWORK, "egressnetworkpolicies"),
    KindInfo("Namespace", "v1", "namespaces"),
    KindInfo("Pod", "v1", "pods"),
    KindInfo("Service", "v1", "services"),
    KindInfo("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
)}
"""Every kind the compiler reads (Endpoints are not among them: the flows need Services
only, and the node's kube-proxy is not ours)."""


class KubeConfigError(OsdnError):
    """No usable kubeconfig or service account."""


class ApiError(OsdnError):
    """The server answered with an error status (or a watch stream said ERROR)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


class Gone(ApiError):
    """410 Gone: the resourceVersion is too old to watch from; list again."""


# What a broken connection looks like through urllib3 (the informer retries these).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError, OSError, ValueError)

# Everything a list or watch may fail with that is worth trying again.
RETRYABLE: tuple[type[BaseException], ...] = (ApiError, *CONNECTION_ERRORS)

SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
CONNECT_TIMEOUT = 10.0  # seconds to connect to the API server
LIST_READ_TIMEOUT = 60.0  # seconds a list page may take
WATCH_READ_SLACK = 30.0  # seconds past the watch's own timeout before its stream counts dead


def _configuration(kubeconfig: str | None) -> tuple[kubernetes.client.Configuration, str]:
    """The client configuration and where it came from: `kubeconfig` if given; else the
    in-cluster service account, then $KUBECONFIG, then ~/.kube/config."""
    configuration = kubernetes.client.Configuration()
    try:
        if kubeconfig is not None:
            kubernetes.config.load_kube_config(config_file=kubeconfig,
                                               client_configuration=configuration)
            return configuration, kubeconfig
        if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(SERVICE_ACCOUNT_TOKEN):
            kubernetes.config.load_incluster_config(client_configuration=configuration)
            return configuration, "in-cluster service account"
        path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        kubernetes.config.load_kube_config(client_configuration=configuration)
        return configuration, path
    except (kubernetes.config.ConfigException, OSError, ValueError, TypeError) as error:
        where = kubeconfig or "the default kubeconfig (in-cluster, $KUBECONFIG, ~/.kube/config)"
        raise KubeConfigError(f"{where}: {error}") from None


class KubeClient:
    """Lists and watches of `KINDS` on one API server, as decoded JSON dicts."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        configuration, self.source = _configuration(kubeconfig)
        self.server = configuration.host
        self.api = kubernetes.client.ApiClient(configuration)

    def _get(self, path: str, query: list[tuple[str, str]],
             read_timeout: float) -> urllib3.BaseHTTPResponse:
        """The unread response of a GET; ApiError (Gone for 410) for an error status."""
        method, url, headers, body, post = self.api.param_serialize(
            "GET", path, query_params=query, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        try:
            response = self.api.call_api(method, url, headers, body, post,
                                         _request_timeout=(CONNECT_TIMEOUT, read_timeout))
        except kubernetes.client.ApiException as error:  # e.g. TLS failures
            raise ApiError(error.status or 0, str(error.reason)) from None
        raw: urllib3.BaseHTTPResponse = response.response
        if raw.status >= 400:
            text = raw.read(64 * 1024).decode("utf-8", "replace")
            raw.release_conn()
            raise _error(raw.status, _status_message(text) or raw.reason or "")
        return raw

    def list(self, kind: str, field_selector: str | None = None,
             limit: int = 500) -> tuple[list[dict[str, Any]], str]:
        """Every object of `kind` (paginated with limit/continue) and the list's
        resourceVersion.  A continue token that expired (410) starts the list over."""
        info = KINDS[kind]
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = [("limit", str(limit))]
            if field_selector:
                query.append(("fieldSelector", field_selector))
            if token:
                query.append(("continue", token))
            raw = self._get(f"{info.base}/{info.plural}", query, LIST_READ_TIMEOUT)
            try:
                page = json.loads(raw.read())
            finally:
                raw.release_conn()
            if not isinstance(page, dict) or not isinstance(page.get("items") or [], list):
                raise ApiError(0, f"list of {kind}: not a list object")
            items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
            meta = page.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    def watch(self, kind: str, resource_version: str, field_selector: str | None = None,
              timeout_seconds: int = 300) -> Iterator[tuple[str, dict[str, Any]]]:
        """The events of a watch from `resource_version`, with bookmarks, until the server
        ends the stream (about `timeout_seconds`).  An ERROR event raises ApiError (Gone for
        410); a broken stream raises one of `CONNECTION_ERRORS`."""
        info = KINDS[kind]
        query = [("watch", "true"), ("allowWatchBookmarks", "true"),
                 ("resourceVersion", resource_version),
                 ("timeoutSeconds", str(timeout_seconds))]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        raw = self._get(f"{info.base}/{info.plural}", query, timeout_seconds + WATCH_READ_SLACK)
        try:
            for line in _lines(raw):
                event = json.loads(line)
                kind_of_event, obj = event.get("type"), event.get("object")
                if not isinstance(obj, dict) or not isinstance(kind_of_event, str):
                    raise ValueError(f"watch of {kind}: not an event: {line[:200]!r}")
                if kind_of_event == "ERROR":
                    raise _error(int(obj.get("code") or 0), str(obj.get("message") or ""))
                yield kind_of_event, obj
        finally:
            raw.release_conn()

    def close(self) -> None:
        self.api.close()


def _lines(raw: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The newline-separated JSON documents of a watch stream, as they arrive."""
    pending = b""
    for chunk in raw.stream(64 * 1024, decode_content=True):
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            line, pending = pending[:end], pending[end + 1:]
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _error(status: int, message: str) -> ApiError:
    return Gone(status, message) if status == 410 else ApiError(status, message)


def _status_message(text: str) -> str:
    """The message of a Status object (the API's error body), else the text's start."""
    try:
        status = json.loads(text)
    except ValueError:
        return text[:200]
    return str(status.get("message") or "") if isinstance(status, dict) else text[:200]

