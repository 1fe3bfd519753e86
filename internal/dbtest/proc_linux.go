package dbtest

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// hasDeathSignal: Linux has the parent-death signal (prctl
// PR_SET_PDEATHSIG), which os/exec sets after the credential change, so
// that it survives it.
const hasDeathSignal = true

func sysProcAttr(a *account, server bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Credential: credential(a)}
	if server {
		attr.Pdeathsig = syscall.SIGKILL
	}
	return attr
}

// A procID names a process by its ID and start time, so that a process
// that reuses the ID of one that has gone is not taken for it.
type procID struct {
	pid   int
	start string
}

// stat returns the fields of /proc/PID/stat after the command name: state
// (0), parent ID (1), ... start time (19).
func stat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil
	}
	return f
}

// procOf returns the procID of pid, with an empty start time if pid is
// not running.
func procOf(pid int) procID {
	id := procID{pid: pid}
	if f := stat(pid); f != nil {
		id.start = f[19]
	}
	return id
}

// descendants lists the processes below pid, children first.
func descendants(pid int) []procID {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]procID{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := stat(p)
		if f == nil {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], procID{pid: p, start: f[19]})
	}
	var out []procID
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 10000 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}

// alive reports whether the process runs: it exists, is the one that was
// listed, and is not a zombie (a zombie is gone but for its exit status,
// which its new parent, such as init, collects).
func (p procID) alive() bool {
	f := stat(p.pid)
	return f != nil && f[19] == p.start && f[0] != "Z" && f[0] != "X"
}

func (p procID) kill() {
	if p.alive() {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// ephemeralLow returns the lowest port of the kernel's ephemeral range,
// or 0 if it is not known.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0
	}
	lo, _ := strconv.Atoi(f[0])
	return lo
}
