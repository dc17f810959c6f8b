//go:build tools

// Package k8stools pins the Kubernetes control-plane commands built for the
// integration tests (an envtest-like local API server). The build tag keeps
// this file out of every real build; it exists so that `go mod tidy` records
// the full dependency graph of the main packages in go.mod/go.sum.
package k8stools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
