package postgres

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the child die with this process.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
