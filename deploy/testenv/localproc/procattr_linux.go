package localproc

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the process in a process group of its own, so a
// terminal's Ctrl-C reaches only the launcher, which then stops its
// children in order (gateways before services before Consul) instead of all
// at once. With killWithParent the kernel also sends it SIGKILL when the
// thread that started it exits, so a crashed launcher or test binary leaves
// no process holding ports. Go ends a thread only in rare cases (a locked
// goroutine exiting), so the signal comes when the launcher process dies.
func setProcAttr(cmd *exec.Cmd, killWithParent bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if killWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
}

// killGroup kills the process group setProcAttr gave cmd: the command and
// whatever it started.
func killGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
