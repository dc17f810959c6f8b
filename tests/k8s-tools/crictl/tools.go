//go:build tools

// Package crictltools pins crictl, the CRI client tests/cluster uses to stop
// pod sandboxes cleanly (CNI teardown included) before containerd stops.
package crictltools

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
