//go:build !linux

package localproc

import "os/exec"

// setProcAttr does nothing where the kernel has no parent-death signal;
// children there share the launcher's process group.
func setProcAttr(*exec.Cmd, bool) {}
