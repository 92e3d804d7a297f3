package jaegerserver

import (
	"os/exec"
	"syscall"
)

// setKillWithParent makes the kernel send SIGKILL to Jaeger when the thread
// that started it exits (see Options.KillWithParent).
func setKillWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
