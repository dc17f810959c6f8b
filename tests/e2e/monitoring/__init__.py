"""Host-side monitoring for the e2e tier: Prometheus, Alertmanager and a Pushgateway as plain processes.

`python -m tests.e2e.monitoring start|stop` (what `make e2e-local` runs when the cluster is the local one):
Prometheus discovers the operator and simulator pods through the cluster's API (pod IPs are routable from
the host on the local cluster) and evaluates the alerting rules the chart's PrometheusRule renders, so the
e2e suite can watch the chart's own alerts fire. `config` builds every file (pure), `harness` runs them.
"""
