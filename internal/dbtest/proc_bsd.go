//go:build unix && !linux

package dbtest

import "syscall"

// hasDeathSignal: other systems have no parent-death signal (FreeBSD's
// procctl PROC_PDEATHSIG_CTL is not in package syscall); Stop is the only
// way their servers end.
const hasDeathSignal = false

func sysProcAttr(a *account, server bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: credential(a)}
}

// A procID names a process.
type procID struct{ pid int }

func procOf(pid int) procID { return procID{pid: pid} }

// descendants is not known here: only the server itself is signalled.
func descendants(pid int) []procID { return nil }

func (p procID) alive() bool { return syscall.Kill(p.pid, 0) == nil }

func (p procID) kill() { syscall.Kill(p.pid, syscall.SIGKILL) }

// ephemeralLow returns 0: the kernel chooses the ports.
func ephemeralLow() int { return 0 }
