//go:build tools

// Package tools pins chart-testing for `go build github.com/helm/chart-testing/v3/ct`.
package tools

import _ "github.com/helm/chart-testing/v3/ct"
