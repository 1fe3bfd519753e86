package capf

import (
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// threadCPU returns the calling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID, to the nanosecond).
func threadCPU(b *testing.B) time.Duration {
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		b.Fatal(errno)
	}
	return time.Duration(ts.Nano())
}
