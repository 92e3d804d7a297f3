//go:build !linux

package consulagent

import "os/exec"

// setKillWithParent is a no-op where the kernel has no parent-death signal.
func setKillWithParent(*exec.Cmd) {}
