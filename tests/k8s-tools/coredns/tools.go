//go:build tools

// Package corednstools pins CoreDNS, the local node's cluster DNS
// (tests/cluster): built from its Go module, run as a host process.
package corednstools

import _ "github.com/coredns/coredns"
