"""The Kubernetes/OpenShift API server as the topology source (``source = kubernetes``):
`client` (HTTP through the official client's configuration and connection pool), `slim`
(only the fields the compiler reads), `informer` (list + watch per kind), `source` (the
informers' objects as `Topology` values for the agent, and the one-shot load of the CLI),
`export` (the objects as ``oc get -o yaml`` writes them)."""
