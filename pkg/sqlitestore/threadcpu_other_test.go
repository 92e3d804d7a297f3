//go:build !linux

package sqlitestore

import "time"

// threadCPU is not measured here.
func threadCPU() time.Duration { return 0 }
