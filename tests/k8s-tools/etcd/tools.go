//go:build tools

// Package etcdtools pins the etcd server built for the integration tests.
// It is a separate module from the Kubernetes one because etcd 3.5's
// dependency versions (grpc, otel, ...) conflict with Kubernetes'. The build
// tag keeps this file out of real builds; it only feeds `go mod tidy`.
package etcdtools

import (
	_ "go.etcd.io/etcd/server/v3"
)
