//go:build tools

// Package helmtools pins the helm client built for the e2e tier. The build
// tag keeps this file out of real builds; it only feeds `go mod tidy`.
package helmtools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
