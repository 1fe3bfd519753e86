//go:build linux

package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Spawn starts a long-running process in its own process group, its
// output going to out, with PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE
// set. When the test ends the group is sent SIGTERM, and SIGKILL (failing
// the test) if the process has not exited within 10s. The channel reports
// the process's exit.
func Spawn(t testing.TB, out io.Writer, name string, args ...string) (*exec.Cmd, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdout, cmd.Stderr = out, out
	// A daemon may be a shell's child: signal the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			t.Errorf("%s (process group %d) did not stop on SIGTERM", name, pgid)
		}
	})
	return cmd, done
}

// relayPy is a Unix-socket-to-TCP relay, run inside a daemon's network
// namespace so that the test, outside it, can reach the daemon's loopback
// port.
const relayPy = `
import socket, sys, threading
path, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(16)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    try:
        u = socket.create_connection(("127.0.0.1", port))
    except OSError:
        c.close()
        return
    t = threading.Thread(target=pump, args=(c, u), daemon=True)
    t.start()
    pump(u, c)
    t.join()
    c.close()
    u.close()
print("relay ready", flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

// netnsSh starts the daemon and the relay in the namespace unshare made:
// $1 ip, $2 python, $3 relay program, $4 socket, $5 port, then the
// daemon's script and arguments.
const netnsSh = `ip=$1 py=$2 relay=$3 sock=$4 port=$5
shift 5
"$ip" link set lo up || exit 1
"$py" "$@" -p "$port" &
exec "$py" -c "$relay" "$sock" "$port"`

// Netns is a reference daemon running in a private network namespace,
// reached through a Unix socket.
type Netns struct {
	Sock string
	// Mode says how it runs, for the test's log.
	Mode string
}

// Dial connects to the daemon's port through the socket.
func (n *Netns) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", n.Sock)
}

// StartNetns starts `python daemon... -p port` (a reference daemon that
// binds 0.0.0.0 and prints "Listening Port: port") in a new network
// namespace (unshare -n; unshare -r -n when not root), next to a relay
// from the Unix socket sock to its loopback port; both are one process
// group, stopped by [Spawn]'s cleanup, and print to out. It returns an
// error wrapping exec.ErrNotFound if unshare or ip is missing, one wrapping
// ErrExited if the daemon or relay exits before it is ready, and an error
// if it is not ready within 20s.
func StartNetns(t testing.TB, out *Log, python, sock string, port int, daemon ...string) (*Netns, error) {
	t.Helper()
	unshare, err1 := exec.LookPath("unshare")
	ip, err2 := exec.LookPath("ip")
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	args := []string{"-n"}
	mode := "unshare -n"
	if os.Geteuid() != 0 {
		args = []string{"-r", "-n"}
		mode = "unshare -r -n"
	}
	p := strconv.Itoa(port)
	args = append(args, "--", "/bin/sh", "-c", netnsSh, "sh", ip, python, relayPy, sock, p)
	cmd, done := Spawn(t, out, unshare, append(args, daemon...)...)
	if err := WaitOutput(out, done, 20*time.Second, "Listening Port: "+p, "relay ready"); err != nil {
		return nil, fmt.Errorf("%s: %w", mode, err)
	}
	return &Netns{Sock: sock, Mode: fmt.Sprintf("%s (process group %d), through %s", mode, cmd.Process.Pid, sock)}, nil
}
