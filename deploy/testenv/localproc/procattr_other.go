//go:build !linux

package localproc

import "os/exec"

// setProcAttr does nothing where the kernel has no parent-death signal;
// children there share the launcher's process group.
func setProcAttr(*exec.Cmd, bool) {}

// killGroup kills the command alone where it has no group of its own.
func killGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
