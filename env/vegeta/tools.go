//go:build tools

// Package tools pins vegeta (the open-loop HTTP load generator of the overload benchmark) in this module's
// go.mod and go.sum; env/build.ts (component vegeta) builds it from them with `go build`.
package tools

import (
	_ "github.com/tsenart/vegeta/v12"
)
